# The load-generator core (a library other benchmarks link, e.g.
# activation_load) and echo_bench, the bare unary ceiling of the gRPC
# runtime. Run by hand; they print figures, they are not tests.
add_library(pa_loadgen STATIC ${CMAKE_CURRENT_LIST_DIR}/loadgen_core.c)
target_include_directories(pa_loadgen PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(pa_loadgen PUBLIC pa_common m Threads::Threads)

add_executable(echo_bench ${CMAKE_CURRENT_LIST_DIR}/echo_bench.c)
target_link_libraries(echo_bench PRIVATE pa_loadgen pa_common)
