# keystore_bench: product keys decoded and generated per second against the
# targets of issue 2 (run it by hand; it prints figures, it is not a test).
add_executable(keystore_bench ${CMAKE_CURRENT_LIST_DIR}/keystore_bench.c)
target_link_libraries(keystore_bench PRIVATE pa_keystore Threads::Threads)
