#!/usr/bin/python3
"""A small provenance scenario, the one investigators describe: an engine
bought for cash in Germany by a buyer who shares a phone with another, driven
by a carrier to a depot near the coast, seized on a beach with its plate and
its block stamp disagreeing; the carrier's manifest arrives after the
seizure; a half-ground serial turns up at another beach. Records come in
that (arrival) order, not in the order things happened.

    deploy/demo/chain_scenario.py [--target HOST:PORT]

submits them to tidewatch-ingest (default 127.0.0.1:50051, the local
stack) and prints each outcome; then try `build/bin/tidewatch chain
6E5X1094417`. tests/integration/test_chain_e2e.py runs the same records
through the whole pipeline. Needs the generated Python modules in build/py
(TW_BUILD_DIR) and python3-grpcio."""

import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path.insert(0, os.path.join(os.environ.get("TW_BUILD_DIR", os.path.join(ROOT, "build")), "py"))
from tidewatch.v1 import records_pb2 as rec  # noqa: E402

DAY = 86400
T0 = 1772409600  # 2026-03-02 00:00 UTC


def ts(field, seconds):
    field.seconds = seconds


def grade(r, source=rec.Grading.SOURCE_1_RELIABLE, info=rec.Grading.INFORMATION_A_KNOWN_DIRECTLY):
    r.grading.source = source
    r.grading.information = info
    r.grading.handling = rec.Grading.HANDLING_P_LAWFUL_SHARING


def engine(item, *readings, make="Yamaha", model="F40FETL"):
    item.quantity = 1
    e = item.equipment
    e.kind, e.make, e.model, e.power_hp = rec.Equipment.ENGINE, make, model, 40
    for text, method in readings:
        e.serials.add(text=text, method=method, completeness=(
            rec.SerialReading.PARTIAL if "?" in text else rec.SerialReading.COMPLETE))


def sale(ref, serial, when, buyer, phone, town="Duisburg"):
    r = rec.Record(source="retailer.de.rhein-boote", source_ref=ref)
    grade(r)
    p = r.purchase
    p.seller.kind, p.seller.name, p.seller.country = rec.Party.COMPANY, "Rhein-Boote GmbH", "DE"
    p.seller.identifiers.add(kind=rec.PartyIdentifier.VAT, value="DE811907980")
    p.seller.place.name, p.seller.place.country = "Duisburg", "DE"
    p.buyer.kind, p.buyer.name, p.buyer.country = rec.Party.PERSON, buyer, "BE"
    p.buyer.identifiers.add(kind=rec.PartyIdentifier.PHONE, value=phone)
    p.buyer.place.name, p.buyer.place.country = town, "BE" if town != "Duisburg" else "DE"
    engine(p.items.add(), (serial, rec.SerialReading.DOCUMENT))
    p.items[0].unit_price.currency, p.items[0].unit_price.amount_minor = "EUR", 489000
    p.payment = rec.PAYMENT_METHOD_CASH
    p.place.name, p.place.country = "Duisburg", "DE"
    ts(p.time, when)
    p.invoice_ref = "RB-" + ref
    return r


def shipment(ref, serial, when):
    r = rec.Record(source="carrier.fr.transports-lefort", source_ref=ref)
    grade(r, info=rec.Grading.INFORMATION_B_INDIRECTLY_CORROBORATED)
    s = r.shipment
    s.shipper.kind, s.shipper.name, s.shipper.country = rec.Party.PERSON, "Jan Peeters", "BE"
    s.shipper.identifiers.add(kind=rec.PartyIdentifier.PHONE, value="+32 470 12 34 56")
    s.carrier.kind, s.carrier.name, s.carrier.country = rec.Party.COMPANY, "Transports Lefort", "FR"
    s.consignee.kind, s.consignee.name, s.consignee.country = rec.Party.COMPANY, "Depot Nord SARL", "FR"
    s.origin.name, s.origin.country = "Duisburg", "DE"
    s.destination.name, s.destination.country = "Lille", "FR"
    ts(s.dispatched, when)
    ts(s.delivered, when + DAY)
    s.consignment_ref = "LEF-2026-0412"
    s.vehicle_registration = "GH-412-KT"
    engine(s.items.add(), (serial, rec.SerialReading.DOCUMENT))
    return r


def seizure(ref, when, *readings, place="Gravelines"):
    r = rec.Record(source="police.fr.pas-de-calais", source_ref=ref)
    grade(r)
    z = r.seizure
    z.agency.kind, z.agency.name, z.agency.country = rec.Party.AGENCY, "Police aux frontières", "FR"
    z.case_ref = "PAF-" + ref
    z.place.name, z.place.country = place, "FR"
    ts(z.time, when)
    it = z.items.add(quantity=1, condition=rec.SeizedItem.USED)
    e = it.equipment
    e.kind, e.make, e.model = rec.Equipment.ENGINE, "Yamaha", "F40FETL"
    for text, method in readings:
        e.serials.add(text=text, method=method, completeness=(
            rec.SerialReading.PARTIAL if "?" in text else rec.SerialReading.COMPLETE))
    return r


def retraction(ref, source, target):
    r = rec.Record(source=source, source_ref=ref)
    r.correction.corrects.source = source
    r.correction.corrects.source_ref = target
    r.correction.reason = "entered against the wrong consignment"
    return r



def records():
    """The scenario's records in arrival order."""
    R = rec.SerialReading
    return [
        seizure("Z-1", T0 + 31 * DAY, ("6E5-X-1094417", R.PLATE), ("6E5X1094471", R.STAMP)),
        sale("S-1", "6E5-X-1094417", T0, "Jan Peeters", "+32 470 12 34 56", "Antwerpen"),
        sale("S-2", "6E5-X-1022211", T0 + 2 * DAY, "J. Peters", "0032470123456", "Antwerpen"),
        # The carrier's manifest, a week after the seizure.
        shipment("M-1", "6E5-X-1094417", T0 + 18 * DAY),
        # A half-ground serial seized at another beach.
        seizure("Z-2", T0 + 40 * DAY, ("6E5-X-10?44?7", R.ETCHED_RECOVERY), place="Wissant"),
    ]


def main():
    import argparse
    import grpc
    from tidewatch.v1 import ingest_pb2 as ing
    ap = argparse.ArgumentParser(description="Submit the demo provenance scenario to tidewatch-ingest.")
    ap.add_argument("--target", default="127.0.0.1:50051", help="tidewatch-ingest (host:port)")
    args = ap.parse_args()
    submit = grpc.insecure_channel(args.target).unary_unary(
        "/tidewatch.v1.IngestService/Submit", request_serializer=ing.SubmitRequest.SerializeToString,
        response_deserializer=ing.SubmitResponse.FromString)
    try:
        for r in records():
            res = submit(ing.SubmitRequest(records=[r]), timeout=10).results[0]
            print("%s/%s: %s" % (r.source, r.source_ref, ing.RecordResult.Outcome.Name(res.outcome)))
    except grpc.RpcError as e:
        sys.exit("tidewatch-ingest at %s: %s" % (args.target, e.details() or e.code()))


if __name__ == "__main__":
    main()
