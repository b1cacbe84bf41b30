# The audit server: the isolated authority for second security values.
# pa_audit_core holds everything but main() so tests can link the store
# layer directly.
add_library(pa_audit_core STATIC
  ${CMAKE_CURRENT_LIST_DIR}/audit_store.c
  ${CMAKE_CURRENT_LIST_DIR}/secret_cache.c
  ${CMAKE_CURRENT_LIST_DIR}/verdict.c
  ${CMAKE_CURRENT_LIST_DIR}/audit_metrics.c
  ${CMAKE_CURRENT_LIST_DIR}/audit_service.c
  ${CMAKE_CURRENT_LIST_DIR}/queue_worker.c
  ${CMAKE_CURRENT_LIST_DIR}/admin.c
)
target_include_directories(pa_audit_core PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(pa_audit_core PUBLIC pa_keystore pa_common pa_protos)

add_executable(audit-server ${CMAKE_CURRENT_LIST_DIR}/main.c)
target_link_libraries(audit-server PRIVATE pa_audit_core)
