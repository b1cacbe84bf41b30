# pa_audit_link: the activation server's side of auditing -- sampling and
# threat signals, the mTLS audit client, the outbox forwarder and the
# revocation puller. Owned apart from the server's other targets so the
# audit work can land without touching them.
add_library(pa_audit_link STATIC
  ${CMAKE_CURRENT_LIST_DIR}/audit_record.c
  ${CMAKE_CURRENT_LIST_DIR}/threat_signal.c
  ${CMAKE_CURRENT_LIST_DIR}/audit_sampler.c
  ${CMAKE_CURRENT_LIST_DIR}/audit_client.c
  ${CMAKE_CURRENT_LIST_DIR}/outbox_forwarder.c
  ${CMAKE_CURRENT_LIST_DIR}/revocation_puller.c
)
target_include_directories(pa_audit_link PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(pa_audit_link PUBLIC pa_keystore pa_common pa_protos)
