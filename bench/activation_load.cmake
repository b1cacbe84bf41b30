# activation_load: the activation server's load benchmark (issue 3; --audit:
# what auditing costs, issue 4). Starts Redis A/B (tests/harness fixture),
# the activation-server binary and echo_bench --serve (with --audit the
# audit-server), so those are built first. Run by hand; prints figures.
add_executable(activation_load ${CMAKE_CURRENT_LIST_DIR}/activation_load.c)
target_link_libraries(activation_load PRIVATE pa_loadgen pa_fixture pa_keystore pa_protos
  PkgConfig::HIREDIS)
add_dependencies(activation_load activation-server echo_bench audit-server)
