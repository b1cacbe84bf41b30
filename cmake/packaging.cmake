# Debian and RPM packages (CPack), one per install component:
#   pa-activation-server, pa-audit-server, pa-admin-server   daemon, systemd
#       unit (packaging/systemd/pa-daemon.service.in), configuration file
#       under /etc/product-activation (a conffile), maintainer scripts that
#       make the daemon's own system user and secrets directory
#   pa-keystore   the vendor's back-office CLI
#   pa-client     the `activate` CLI and its units, libpa_activate.a and activate.h
# Library dependencies come from the binaries (dpkg-shlibdeps; rpm's own
# ELF scan), so they are the libraries actually linked, at the versions
# built against. Build them from a tree configured for /usr:
#   cmake -S . -B build/pkg -DCMAKE_INSTALL_PREFIX=/usr -DCMAKE_BUILD_TYPE=Release
#   cmake --build build/pkg --target activation-server audit-server admin-server keystore activate pa_activate_archive
#   (cd build/pkg && cpack -G DEB && cpack -G RPM)
# scripts/packages-test.sh does this and installs them into a fresh Debian.

# Configuration and secrets: /etc/product-activation (for the /usr prefix;
# GNUInstallDirs maps its sysconfdir to /etc).
set(PA_CONFDIR ${CMAKE_INSTALL_FULL_SYSCONFDIR}/product-activation)
set(PA_PKG_DIR ${CMAKE_BINARY_DIR}/packaging)

# One daemon's unit, configuration and maintainer scripts; sets the CPack
# variables of its component in the caller's scope.
function(pa_package_daemon component daemon user gecos description)
  string(TOUPPER ${component} up)
  set(PA_DAEMON ${daemon})
  set(PA_USER ${user})
  set(PA_GECOS ${gecos})      # the user's full name: chfn refuses ':' and ','
  set(PA_DESCRIPTION ${description})
  set(PA_PACKAGE pa-${component})
  set(PA_UNIT pa-${daemon}.service)
  set(PA_SECRETS ${PA_CONFDIR}/${daemon})
  set(out ${PA_PKG_DIR}/${component})
  configure_file(${CMAKE_SOURCE_DIR}/packaging/systemd/pa-daemon.service.in ${out}/${PA_UNIT} @ONLY)
  install(FILES ${out}/${PA_UNIT} DESTINATION lib/systemd/system COMPONENT ${component})
  install(FILES ${CMAKE_SOURCE_DIR}/packaging/etc/${daemon}.conf DESTINATION ${PA_CONFDIR} COMPONENT ${component})
  foreach(script postinst prerm postrm)
    configure_file(${CMAKE_SOURCE_DIR}/packaging/deb/${script}.in ${out}/deb/${script} @ONLY
      FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
  endforeach()
  file(WRITE ${out}/deb/conffiles "${PA_CONFDIR}/${daemon}.conf\n")
  foreach(script post postun)
    configure_file(${CMAKE_SOURCE_DIR}/packaging/rpm/${script}.in ${out}/rpm/${script} @ONLY)
  endforeach()

  set(CPACK_DEBIAN_${up}_PACKAGE_CONTROL_EXTRA
    "${out}/deb/postinst;${out}/deb/prerm;${out}/deb/postrm;${out}/deb/conffiles" PARENT_SCOPE)
  set(CPACK_DEBIAN_${up}_PACKAGE_DEPENDS "adduser" PARENT_SCOPE)
  set(CPACK_DEBIAN_${up}_PACKAGE_RECOMMENDS "redis-server" PARENT_SCOPE)
  set(CPACK_DEBIAN_${up}_PACKAGE_SECTION "net" PARENT_SCOPE)
  set(CPACK_COMPONENT_${up}_DESCRIPTION "${description}" PARENT_SCOPE)
  set(CPACK_RPM_${up}_POST_INSTALL_SCRIPT_FILE ${out}/rpm/post PARENT_SCOPE)
  set(CPACK_RPM_${up}_POST_UNINSTALL_SCRIPT_FILE ${out}/rpm/postun PARENT_SCOPE)
  set(CPACK_RPM_${up}_USER_FILELIST "%config(noreplace) ${PA_CONFDIR}/${daemon}.conf" PARENT_SCOPE)
  set(CPACK_RPM_${up}_PACKAGE_REQUIRES "shadow-utils" PARENT_SCOPE)
endfunction()

pa_package_daemon(activation-server activation-server pa-activation "Product activation server"
  "product activation: activation server for installers")
pa_package_daemon(audit-server audit-server pa-audit "Product activation audit server"
  "product activation: audit server")
pa_package_daemon(admin-server admin-server pa-admin "Product activation admin server"
  "product activation: admin API server")
# The commented example of every activation-server option goes with it.
install(FILES ${CMAKE_SOURCE_DIR}/activation-server/activation-server.conf.example
  DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/pa-activation-server COMPONENT activation-server)
# Every package says who made it and on what terms (packaging/copyright)
# and carries the changelog of this version (packaging/changelog.in,
# compressed as Debian's policy asks: gzip -9n, no name or time inside).
configure_file(${CMAKE_SOURCE_DIR}/packaging/changelog.in ${PA_PKG_DIR}/changelog @ONLY)
execute_process(COMMAND gzip -9nc ${PA_PKG_DIR}/changelog OUTPUT_FILE ${PA_PKG_DIR}/changelog.gz
  RESULT_VARIABLE _gzip_result)
if(NOT _gzip_result EQUAL 0)
  message(FATAL_ERROR "gzip of the package changelog failed")
endif()
foreach(component activation-server audit-server admin-server keystore client)
  install(FILES ${CMAKE_SOURCE_DIR}/packaging/copyright ${PA_PKG_DIR}/changelog.gz
    DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/pa-${component} COMPONENT ${component})
endforeach()
set(CPACK_COMPONENT_KEYSTORE_DESCRIPTION "product activation: keystore, the vendor's back-office CLI")
set(CPACK_COMPONENT_CLIENT_DESCRIPTION "product activation: the installer client
The activate CLI and its systemd units, and the installer library
libpa_activate.a with its header activate.h.")
set(CPACK_DEBIAN_KEYSTORE_PACKAGE_SECTION "admin")
set(CPACK_DEBIAN_CLIENT_PACKAGE_SECTION "admin")

set(CPACK_PACKAGE_NAME pa)
set(CPACK_PACKAGE_VENDOR "product-activation")
set(CPACK_PACKAGE_CONTACT "product-activation maintainers <maintainers@product-activation.invalid>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "product activation service")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
set(CPACK_COMPONENTS_ALL activation-server audit-server admin-server keystore client)
set(CPACK_COMPONENTS_GROUPING IGNORE)
set(CPACK_STRIP_FILES ON)

set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_PACKAGE_NAME pa)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

set(CPACK_RPM_COMPONENT_INSTALL ON)
set(CPACK_RPM_PACKAGE_NAME pa)
set(CPACK_RPM_FILE_NAME RPM-DEFAULT)
set(CPACK_RPM_PACKAGE_LICENSE "Proprietary")
set(CPACK_RPM_PACKAGE_GROUP "System Environment/Daemons")
set(CPACK_RPM_PACKAGE_RELOCATABLE OFF)
# No /usr/lib/.build-id links: debug symbols are not packaged.
set(CPACK_RPM_SPEC_MORE_DEFINE "%define _build_id_links none")
# Directories every system owns already are not the packages' to own.
set(CPACK_RPM_EXCLUDE_FROM_AUTO_FILELIST_ADDITION
  ${CMAKE_INSTALL_FULL_SYSCONFDIR} ${CMAKE_INSTALL_PREFIX}/lib/systemd ${CMAKE_INSTALL_PREFIX}/lib/systemd/system
  ${CMAKE_INSTALL_FULL_DATAROOTDIR}/doc ${CMAKE_INSTALL_FULL_INCLUDEDIR}
  ${CMAKE_INSTALL_FULL_LIBDIR})

include(CPack)
