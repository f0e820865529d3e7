/* ProvenanceService.SearchItems and ListEvents. */
#include "query.h"
#include "sql.h"

void query_search_items(qcall *q)
{
    qcall_fail(q, TW_GRPC_UNIMPLEMENTED, "not yet");
}

void query_list_events(qcall *q)
{
    qcall_fail(q, TW_GRPC_UNIMPLEMENTED, "not yet");
}
