/* ProvenanceService.GetParty, TraceBack and TraceForward. */
#include "query.h"
#include "sql.h"

void query_get_party(qcall *q)
{
    qcall_fail(q, TW_GRPC_UNIMPLEMENTED, "GetParty: not yet");
}

void query_trace_back(qcall *q)
{
    qcall_fail(q, TW_GRPC_UNIMPLEMENTED, "TraceBack: not yet");
}

void query_trace_forward(qcall *q)
{
    qcall_fail(q, TW_GRPC_UNIMPLEMENTED, "TraceForward: not yet");
}
