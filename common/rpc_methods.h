/* rpc_methods.h -- the gRPC service names and method paths of protos/,
 * spelled once for every server, client, test and benchmark.
 *
 * We use the C core API without generated stubs, so a path is only a string:
 * a typo on one side is no compile error but an UNIMPLEMENTED at run time,
 * and a renamed method would have to be found in every copy. Each method is
 * written as its metric label (the path without the leading '/', as
 * rpc_server.h labels pa_grpc_* series) and the path is built from it, so
 * tests can name a series at compile time:
 *   "pa_grpc_calls_total{method=\"" PA_RPC_ACTIVATE_LABEL "\",code=\"OK\"}"
 * The *_SERVICE names are what grpc.health.v1.Health/Check is asked about. */
#ifndef PA_COMMON_RPC_METHODS_H
#define PA_COMMON_RPC_METHODS_H

/* protos/activation/v1/activation.proto: installers -> activation server */
#define PA_RPC_ACTIVATION_SERVICE "activation.v1.Activation"
#define PA_RPC_ACTIVATE_LABEL PA_RPC_ACTIVATION_SERVICE "/Activate"
#define PA_RPC_RENEW_LABEL PA_RPC_ACTIVATION_SERVICE "/Renew"
#define PA_RPC_DEACTIVATE_LABEL PA_RPC_ACTIVATION_SERVICE "/Deactivate"
#define PA_RPC_LIST_MACHINES_LABEL PA_RPC_ACTIVATION_SERVICE "/ListMachines"
#define PA_RPC_RELEASE_MACHINE_LABEL PA_RPC_ACTIVATION_SERVICE "/ReleaseMachine"
#define PA_RPC_ACTIVATE "/" PA_RPC_ACTIVATE_LABEL
#define PA_RPC_RENEW "/" PA_RPC_RENEW_LABEL
#define PA_RPC_DEACTIVATE "/" PA_RPC_DEACTIVATE_LABEL
#define PA_RPC_LIST_MACHINES "/" PA_RPC_LIST_MACHINES_LABEL
#define PA_RPC_RELEASE_MACHINE "/" PA_RPC_RELEASE_MACHINE_LABEL

/* protos/audit/v1/audit.proto: activation server -> audit server (mTLS) */
#define PA_RPC_AUDIT_SERVICE "audit.v1.Audit"
#define PA_RPC_AUDIT_VERIFY_LABEL PA_RPC_AUDIT_SERVICE "/Verify"
#define PA_RPC_AUDIT_SUBMIT_LABEL PA_RPC_AUDIT_SERVICE "/Submit"
#define PA_RPC_AUDIT_LIST_REVOCATIONS_LABEL PA_RPC_AUDIT_SERVICE "/ListRevocations"
#define PA_RPC_AUDIT_REVOKE_LABEL PA_RPC_AUDIT_SERVICE "/Revoke"
#define PA_RPC_AUDIT_VERIFY "/" PA_RPC_AUDIT_VERIFY_LABEL
#define PA_RPC_AUDIT_SUBMIT "/" PA_RPC_AUDIT_SUBMIT_LABEL
#define PA_RPC_AUDIT_LIST_REVOCATIONS "/" PA_RPC_AUDIT_LIST_REVOCATIONS_LABEL
#define PA_RPC_AUDIT_REVOKE "/" PA_RPC_AUDIT_REVOKE_LABEL

/* protos/volume/v1/usage.proto: on-premises activation server -> the
 * vendor's activation servers */
#define PA_RPC_USAGE_SERVICE "volume.v1.Usage"
#define PA_RPC_USAGE_REPORT_LABEL PA_RPC_USAGE_SERVICE "/Report"
#define PA_RPC_USAGE_REPORT "/" PA_RPC_USAGE_REPORT_LABEL

/* protos/grpc/health/v1/health.proto: served by common/rpc_server.c */
#define PA_RPC_HEALTH_SERVICE "grpc.health.v1.Health"
#define PA_RPC_HEALTH_CHECK_LABEL PA_RPC_HEALTH_SERVICE "/Check"
#define PA_RPC_HEALTH_CHECK "/" PA_RPC_HEALTH_CHECK_LABEL

/* DNS-SD over mDNS (docs/machines.md): the service type an on-premises
 * activation server announces on its installer port, and the version of its
 * TXT record ("v=1"; "order=SERIAL[,SERIAL...]" beside it). */
#define PA_MDNS_SERVICE_TYPE "_pa-activation._tcp"
#define PA_MDNS_TXT_VERSION "1"

#endif
