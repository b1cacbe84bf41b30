# Activation server (issue 3). pa_activation holds the server's parts so that
# tests and the benchmark link exactly what the daemon runs; policy.lua is
# embedded into it at build time.
set(PA_POLICY_LUA_C ${CMAKE_CURRENT_BINARY_DIR}/policy_lua.c)
add_custom_command(
  OUTPUT ${PA_POLICY_LUA_C}
  COMMAND ${CMAKE_COMMAND} -DIN=${CMAKE_CURRENT_SOURCE_DIR}/policy.lua -DOUT=${PA_POLICY_LUA_C}
          -DNAME=policy_lua -P ${CMAKE_CURRENT_SOURCE_DIR}/cmake/embed_text.cmake
  DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/policy.lua ${CMAKE_CURRENT_SOURCE_DIR}/cmake/embed_text.cmake
  COMMENT "embedding policy.lua")

add_library(pa_activation STATIC
  validate.c
  license.c
  license_grant.c
  group_cache.c
  policy.c
  ${PA_POLICY_LUA_C}
  worker.c
  activate.c
  renew.c
)
target_include_directories(pa_activation PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
# pa_audit_link (audit_link.cmake): sampling, the audit client, forwarder, puller.
target_link_libraries(pa_activation PUBLIC pa_audit_link pa_common pa_keystore pa_protos
  PkgConfig::OPENSSL)

add_executable(activation-server main.c)
target_link_libraries(activation-server PRIVATE pa_activation)

add_executable(pa-activate-once cli_client.c)
target_link_libraries(pa-activate-once PRIVATE pa_activation)
