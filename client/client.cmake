# The installer client: library pa_client (public header activate.h) and the
# `activate` CLI. A vendor builds it with its own public key and salt:
#   cmake -DPA_CLIENT_PUBLIC_KEY=/path/vendor-public.pem -DPA_CLIENT_VENDOR_SALT=acme-2026 ...
set(PA_CLIENT_PUBLIC_KEY "" CACHE FILEPATH
  "PEM file with the vendor's license-verification public key(s), compiled into the client")
set(PA_CLIENT_VENDOR_SALT "pa-demo-vendor" CACHE STRING
  "Vendor salt for machine ids (different vendors see unrelated ids)")

set(PA_CLIENT_PUBLIC_KEY_TEXT "")
if(PA_CLIENT_PUBLIC_KEY)
  file(READ ${PA_CLIENT_PUBLIC_KEY} _pem)
  string(STRIP "${_pem}" _pem)
  string(REPLACE "\n" "\\n" PA_CLIENT_PUBLIC_KEY_TEXT "${_pem}\n")
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PA_CLIENT_PUBLIC_KEY})
endif()
configure_file(${CMAKE_CURRENT_SOURCE_DIR}/client_build.h.in
  ${CMAKE_CURRENT_BINARY_DIR}/client_build.h @ONLY)

add_library(pa_client STATIC
  key_check.c
  machine_id.c
  discovery.c
  transport.c
  license_verify.c
  state.c
  schedule.c
  client.c
  offline.c
)
target_include_directories(pa_client
  PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}
  PRIVATE ${CMAKE_CURRENT_BINARY_DIR})
target_link_libraries(pa_client PUBLIC pa_keystore pa_common pa_protos
  PkgConfig::CARES PkgConfig::OPENSSL PkgConfig::GRPC)

add_executable(activate activate_cli.c)
target_link_libraries(activate PRIVATE pa_client)

# systemd units, with the installed path of `activate` filled in.
include(GNUInstallDirs)
foreach(unit activate.service activate-renew.service)
  configure_file(${CMAKE_CURRENT_SOURCE_DIR}/systemd/${unit}.in ${CMAKE_CURRENT_BINARY_DIR}/systemd/${unit} @ONLY)
endforeach()
install(TARGETS activate RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/systemd/activate.service
  ${CMAKE_CURRENT_BINARY_DIR}/systemd/activate-renew.service
  ${CMAKE_CURRENT_SOURCE_DIR}/systemd/activate-renew.timer
  DESTINATION lib/systemd/system)
