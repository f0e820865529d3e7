"""A fake tidewatch.v1.ProvenanceService (python3-grpcio) for test_cli.py.

It answers canned responses, and errors for special keys, and records every
request it receives (method name, decoded request) so that tests can check
what the CLI sent. It listens on 127.0.0.1 on a free port.

  GetChain    serial "NOPE123" NOT_FOUND; "BAD!" INVALID_ARGUMENT (names the
              field); "DOWN" UNAVAILABLE; "SLOW" answers after 3 s (or when
              cancelled); a serial with '?' candidates only; a hull number a
              boat; anything else the engine chain of chain_response().
  SearchItems "ZZZ*" no match; "LOOP*" always the same next page token;
              anything else four matches over pages "", "p2", "p3".
  TraceBack   event 999 NOT_FOUND; TraceForward; GetParty 404 NOT_FOUND;
  ListEvents  kind "nothing" empty; two pages "", "e2".
"""

import threading
import time
from concurrent import futures

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from tidewatch.v1 import provenance_pb2 as pv
from tidewatch.v1 import records_pb2 as rec

T0 = 1772445600  # 2026-03-02T10:00:00Z
DAY = 86400


def ts(seconds, nanos=0):
    return Timestamp(seconds=seconds, nanos=nanos)


def party(pid, name, kind, country):
    return pv.PartyRef(id=pid, name=name, kind=kind, country=country)


def place(name, cc, lat, lon, coast_hub, km, hub="", hub_kind=""):
    return pv.HopPlace(name=name, country=cc, has_coordinates=True, lat=lat, lon=lon,
                       coast_hub=coast_hub, coast_hub_km=km, hub=hub, hub_kind=hub_kind)


DEALER = party(5, "Bootshandel Nord", "company", "DE")
BOB = party(7, "Bob \"the boat\" O'Neil", "person", "GB")
JAN = party(9, "Jan Peeters", "person", "BE")
LEFORT = party(11, "Transports Lefort", "company", "FR")
PAF = party(20, "Police aux Fronti\u00e8res", "agency", "FR")
HAMBURG = place("Hamburg", "DE", 53.55, 9.99, "Dunkerque", 640.4)
LILLE = place("Lille", "FR", 50.63, 3.06, "Dunkerque", 68.0)
ROUBAIX = place("Roubaix", "FR", 50.69, 3.17, "Dunkerque", 75.2)
BREMEN = place("Bremen", "DE", 53.08, 8.80, "Dunkerque", 560.0)
GRAVELINES = place("Gravelines", "FR", 50.98, 2.12, "Gravelines", 0.0, "Gravelines", "coast")
G = rec.Grading


def item(iid=17, key="6E5X1016523", kind=pv.ITEM_KIND_ENGINE, maker="Yamaha", model="F40"):
    return pv.Item(
        id=iid, kind=kind, maker=maker, model=model, first_seen=ts(T0),
        keys=[pv.ItemKey(kind="serial" if kind == pv.ITEM_KIND_ENGINE else "hull", key=key,
                         maker=maker,
                         readings=[pv.Reading(text="6E5-X 1016523", method="plate",
                                              completeness="complete", event_id=101,
                                              source="dealer-de")])])


def sale_hop():
    return pv.Hop(
        event_id=101, kind=pv.HOP_KIND_SALE, item_id=17, time=ts(T0), received=ts(T0 + 3600),
        to=BOB, place=HAMBURG, payment=rec.PAYMENT_METHOD_CASH,
        unit_price=rec.Money(currency="EUR", amount_minor=450000),
        sources=[pv.SourceRef(event_id=101, source="dealer-de", source_ref="INV-1",
                              grading=G(source=G.SOURCE_1_RELIABLE,
                                        information=G.INFORMATION_A_KNOWN_DIRECTLY)),
                 pv.SourceRef(event_id=102, source="police-de", source_ref="K-7",
                              grading=G(source=G.SOURCE_2_UNTESTED,
                                        information=G.INFORMATION_B_INDIRECTLY_CORROBORATED,
                                        handling=G.HANDLING_P_LAWFUL_SHARING))],
        **{"from": DEALER})


def chain_response():
    hops = [
        sale_hop(),
        pv.Hop(event_id=120, kind=pv.HOP_KIND_SHIPMENT, item_id=17, time=ts(T0 + 8 * DAY),
               to=JAN, carrier=LEFORT, origin=HAMBURG, place=LILLE,
               status=pv.HOP_STATUS_CORRECTED, corrected_by=130, **{"from": BOB}),
        pv.Hop(event_id=130, kind=pv.HOP_KIND_SHIPMENT, item_id=17, time=ts(T0 + 9 * DAY),
               to=JAN, carrier=LEFORT, origin=HAMBURG, place=ROUBAIX, corrects=120,
               consignment_ref="LEF-88", sources=[pv.SourceRef(event_id=130, source="lefort")],
               **{"from": BOB}),
        pv.Hop(event_id=135, kind=pv.HOP_KIND_SALE, item_id=17, time=ts(T0 + 10 * DAY),
               to=party(31, "Someone", "person", "NL"), place=BREMEN,
               status=pv.HOP_STATUS_RETRACTED, **{"from": JAN}),
        pv.Hop(event_id=140, kind=pv.HOP_KIND_SEIZURE, item_id=17, time=ts(T0 + 13 * DAY, 500000000),
               to=PAF, place=GRAVELINES, launch=True, condition="used", case_ref="PV 2026/114",
               sources=[pv.SourceRef(event_id=140, source="paf-fr", source_ref="PV 2026/114",
                                     grading=G(source=G.SOURCE_1_RELIABLE,
                                               information=G.INFORMATION_A_KNOWN_DIRECTLY))]),
    ]
    chain = pv.Chain(
        item=item(), hops=hops,
        facts=[pv.ChainFact(kind="custody_gap", severity="warning",
                            text="custody gap: sold to Bob \"the boat\" O'Neil on 2026-03-02, next "
                                 "seized at Gravelines on 2026-03-15",
                            event_ids=[130, 140]),
               pv.ChainFact(kind="too_fast", severity="inconsistency",
                            text="too fast: Hamburg to Roubaix in 2 hours"),
               pv.ChainFact(kind="corroborated", severity="info",
                            text="the sale on 2026-03-02 has 2 independent sources")],
        related=[pv.RelatedItem(item_id=18, relation="same_purchase", key="6E5X1016524",
                                event_id=101, detail="bought together")],
        last_custodian=PAF, last_place=GRAVELINES)
    return pv.GetChainResponse(chains=[chain], normalized="6E5X1016523")


def boat_response():
    chain = pv.Chain(item=item(33, "FRABC12345D606", pv.ITEM_KIND_BOAT, "Zodiac", "Pro 420"),
                     hops=[sale_hop()], last_custodian=BOB, last_place=HAMBURG)
    return pv.GetChainResponse(chains=[chain], normalized="FRABC12345D606")


def candidates_response():
    return pv.GetChainResponse(
        normalized="6E5X10?6523",
        candidates=[
            pv.Candidate(item=item(), score=0.86, probable=True, reading="6E5X10?6523",
                         reason="10 of 11 characters agree (1 unreadable), same maker and model"),
            pv.Candidate(item=item(44, "6E5X1016528"), score=0.61, reading="6E5X10?6523",
                         reason="9 of 11 characters agree, same maker"),
        ])


def match(n):
    key = "6E5X%07d" % n
    return pv.ItemMatch(item=item(100 + n, key), score=1.0 - n / 10.0, matched_key=key,
                        reason="pattern", last_place=GRAVELINES)


SEARCH_PAGES = {"": ([1, 2], "p2"), "p2": ([3], "p3"), "p3": ([4], "")}


def trace_response(forward):
    hop = sale_hop()
    bulk = pv.Hop(event_id=101, kind=pv.HOP_KIND_SALE, time=ts(T0), quantity=10, to=BOB,
                  place=HAMBURG, **{"from": DEALER})
    return pv.TraceResponse(items=[pv.TracedItem(item=item(), hops=[hop], depth=1 if forward else 0)],
                            unidentified=[] if forward else [bulk])


def party_response():
    phone = rec.PartyIdentifier(kind=rec.PartyIdentifier.PHONE, value="+32470123456")
    a = pv.PartyIdentity(id=9, event_id=101, role="buyer", kind="person", name="Jan Peeters",
                         country="BE", identifiers=[phone])
    b = pv.PartyIdentity(id=10, event_id=150, role="buyer", kind="person", name="J. Peeters",
                         country="BE", identifiers=[phone])
    return pv.GetPartyResponse(party=a, cluster=[a, b],
                               links=[pv.ClusterLink(party_a=9, party_b=10, kind="phone",
                                                     value="+32470123456")],
                               hops=[sale_hop()])


def event(eid, day):
    return pv.EventSummary(id=eid, kind="seizure", source="paf-fr", source_ref="PV 2026/114",
                           occurred=ts(T0 + day * DAY), received=ts(T0 + day * DAY + 60),
                           serial_keys=["6E5X1016523"])


EVENT_PAGES = {"": ([event(140, 13)], "e2"), "e2": ([event(141, 14)], "")}


class FakeQuery:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self.server = None
        self.target = None

    # -- bookkeeping

    def clear(self):
        with self.lock:
            self.requests = []

    def _record(self, method, req):
        with self.lock:
            self.requests.append((method, req))

    def of(self, method):
        with self.lock:
            return [r for m, r in self.requests if m == method]

    def only(self, method):
        reqs = self.of(method)
        if len(reqs) != 1 or len(self.requests) != 1:
            raise AssertionError("expected exactly one %s request, got %r" % (method, self.requests))
        return reqs[0]

    # -- methods

    def get_chain(self, req, ctx):
        self._record("GetChain", req)
        if req.serial == "NOPE123":
            ctx.abort(grpc.StatusCode.NOT_FOUND, "no item with serial NOPE123")
        if req.serial == "BAD!":
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "serial: '!' is not part of any serial")
        if req.serial == "DOWN":
            ctx.abort(grpc.StatusCode.UNAVAILABLE, "database unavailable")
        if req.serial == "SLOW":
            end = time.monotonic() + 3.0
            while time.monotonic() < end and ctx.is_active():
                time.sleep(0.02)
        if "?" in req.serial:
            return candidates_response()
        if req.hull_number:
            return boat_response()
        return chain_response()

    def search(self, req, ctx):
        self._record("SearchItems", req)
        if req.pattern == "ZZZ*":
            return pv.SearchItemsResponse()
        if req.pattern == "LOOP*":
            return pv.SearchItemsResponse(items=[match(1)], next_page_token="again")
        if req.page_token not in SEARCH_PAGES:
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "page_token: unknown")
        nums, nxt = SEARCH_PAGES[req.page_token]
        return pv.SearchItemsResponse(items=[match(n) for n in nums], next_page_token=nxt)

    def trace_back(self, req, ctx):
        self._record("TraceBack", req)
        if req.event_id == 999:
            ctx.abort(grpc.StatusCode.NOT_FOUND, "no event 999")
        return trace_response(False)

    def trace_forward(self, req, ctx):
        self._record("TraceForward", req)
        return trace_response(True)

    def get_party(self, req, ctx):
        self._record("GetParty", req)
        if req.party_id == 404:
            ctx.abort(grpc.StatusCode.NOT_FOUND, "no party with id 404")
        return party_response()

    def list_events(self, req, ctx):
        self._record("ListEvents", req)
        if req.kind == "nothing":
            return pv.ListEventsResponse()
        evs, nxt = EVENT_PAGES[req.page_token]
        return pv.ListEventsResponse(events=evs, next_page_token=nxt)

    def start(self):
        def h(fn, req_cls):
            return grpc.unary_unary_rpc_method_handler(
                fn, request_deserializer=req_cls.FromString,
                response_serializer=lambda m: m.SerializeToString())

        handlers = {
            "GetChain": h(self.get_chain, pv.GetChainRequest),
            "SearchItems": h(self.search, pv.SearchItemsRequest),
            "TraceBack": h(self.trace_back, pv.TraceBackRequest),
            "TraceForward": h(self.trace_forward, pv.TraceForwardRequest),
            "GetParty": h(self.get_party, pv.GetPartyRequest),
            "ListEvents": h(self.list_events, pv.ListEventsRequest),
        }
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        self.server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("tidewatch.v1.ProvenanceService", handlers),))
        port = self.server.add_insecure_port("127.0.0.1:0")
        if port == 0:
            raise RuntimeError("could not bind 127.0.0.1")
        self.server.start()
        self.target = "127.0.0.1:%d" % port

    def stop(self):
        if self.server:
            self.server.stop(1).wait()
