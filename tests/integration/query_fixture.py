"""The provenance tables as tidewatch-provenance would fill them, for
test_query.py: events with real Record payloads and prov_* rows, written as
SQL (run by the superuser). Ids follow migration 0006 (event id * 1024 +
ordinal).

The story:
  5  2026-09-01  sale: Yamaha Distributor NL -> Boote Nord GmbH, an engine
                 read 6E5X1016532 (item 5121, later merged into 1024)
  1  2026-10-02  sale in Leer: Boote Nord GmbH -> A. Karimi (phone
                 +4915123456789): engines 6E5X1016523 (item 1024) and
                 6E5X1016524 (item 1025), and 10 boats without hull numbers
  4  2026-10-05  sale: Boote Nord GmbH -> A. Karimi again (same phone, an
                 e-mail, and the marketplace phone): 6E5X2000001 (item 4096)
  2  2026-11-12  shipment Leer -> Dunkerque by Trans Europa BV (consignment
                 TE-88412): shipper A. Karimi (same phone), consignee
                 M. Rahimi: 6E5X1016523
  6  2026-11-15  sale in Dunkerque: M. Rahimi (same name and address as the
                 consignee of 2) -> a buyer: engine 6E5X5000001 (item 6144)
  3  2026-11-20  seizure at Gravelines by the Gendarmerie: 6E5X1O16523
                 (plate) and 6E5X1016532 (stamp) on one engine (the merge of
                 5121 into 1024), a partial reading 6E5X10?65?3 (partial
                 item 3073), a boat GB-ABC00042-A3-99 (item 3074)
  200-259        60 sales of engines 6E5X30000NN (paging)
  300-351        52 buyers of other names sharing the marketplace phone
                 +33999999999 (too common: more than 50 names)
"""

import sys

from tidewatch.v1 import records_pb2 as rec

TS = {
    5: "2026-09-01 10:00:00+00",
    1: "2026-10-02 14:10:00+00",
    4: "2026-10-05 09:00:00+00",
    2: "2026-11-12 06:00:00+00",
    3: "2026-11-20 05:40:00+00",
    6: "2026-11-15 16:00:00+00",
}


FOLD = str.maketrans("OQDILSBZG", "000115826")


def loose(key):
    """The loose key as tw_serial folds it (OCR look-alikes to one class)."""
    return key.translate(FOLD)


def q(s):
    return "'" + s.replace("'", "''") + "'"


def payload(source, ref, kind):
    r = rec.Record(source=source, source_ref=ref)
    if kind == 1:
        r.purchase.seller.name = "Boote Nord GmbH"
        r.purchase.invoice_ref = ref
    elif kind == 2:
        r.shipment.consignment_ref = "TE-88412"
    else:
        r.seizure.case_ref = "2026/0412"
    return r.SerializeToString()


class Fixture:
    def __init__(self):
        self.sql = ["BEGIN;"]

    def event(self, eid, kind, source, ref, ts, serials=(), hulls=()):
        self.sql.append(
            "INSERT INTO events (id, source, source_ref, kind, occurred_at, serial_keys, hull_keys, "
            "payload) OVERRIDING SYSTEM VALUE VALUES (%d, %s, %s, %d, %s, %s, %s, '\\x%s');"
            % (eid, q(source), q(ref), kind, q(ts), q("{" + ",".join(serials) + "}"),
               q("{" + ",".join(hulls) + "}"), payload(source, ref, kind).hex()))

    def item(self, iid, root, key, event, kind=1, maker="Yamaha", model="F40FETL", partial=False,
             key_kind=1, last=None):
        lat, lon, place, country, seen = last or ("NULL", "NULL", "", "", "NULL")
        self.sql.append(
            "INSERT INTO prov_items (item_id, root_id, kind, maker, model, partial, first_event, "
            "first_seen, last_seen, last_lat, last_lon, last_place, last_country) VALUES "
            "(%d, %d, %d, %s, %s, %s, %d, %s, %s, %s, %s, %s, %s);"
            % (iid, root, kind, q(maker), q(model), "true" if partial else "false", event, seen,
               seen, lat, lon, q(place), q(country)))
        self.key(iid, key, event, maker if key_kind == 1 else "", partial, key_kind)

    def key(self, iid, key, event, maker="Yamaha", partial=False, key_kind=1):
        self.sql.append(
            "INSERT INTO prov_item_keys (key_kind, key, maker, item_id, loose, partial, first_event) "
            "VALUES (%d, %s, %s, %d, %s, %s, %d);"
            % (key_kind, q(key), q(maker), iid, q(loose(key)), "true" if partial else "false",
               event))

    def reading(self, event, field, iid, key, raw, method=1, completeness=1, key_kind=1):
        self.sql.append(
            "INSERT INTO prov_readings (event_id, field, item_id, key_kind, key, raw, method, "
            "completeness) VALUES (%d, %s, %d, %d, %s, %s, %d, %d);"
            % (event, q(field), iid, key_kind, q(key), q(raw), method, completeness))

    def party(self, pid, event, role, kind, name, country="", address_key="", place="", idents=()):
        self.sql.append(
            "INSERT INTO prov_parties (party_id, event_id, role, kind, name, name_key, country, "
            "address_key, place) VALUES (%d, %d, %s, %d, %s, %s, %s, %s, %s);"
            % (pid, event, q(role), kind, q(name), q(name.lower().replace(".", "").strip()),
               q(country), q(address_key), q(place)))
        for k, v in idents:
            self.sql.append("INSERT INTO prov_party_identifiers (party_id, kind, value) VALUES "
                            "(%d, %s, %s);" % (pid, q(k), q(v)))

    def hop(self, event, line, item, kind, source, ref, ts, frm=None, to=None, carrier=None,
            place=("", "", "NULL", "NULL"), origin=("", "", "NULL", "NULL"), quantity=1,
            consignment="", case_ref="", status=0, launch=False, condition=0):
        self.sql.append(
            "INSERT INTO prov_hops (event_id, line, item_id, kind, status, line_field, quantity, "
            "occurred_at, received_at, source, source_ref, grading_source, grading_info, "
            "from_party, to_party, carrier_party, origin_name, origin_country, origin_lat, "
            "origin_lon, place_name, place_country, place_lat, place_lon, consignment_ref, "
            "case_ref, launch, condition) VALUES (%d, %d, %s, %d, %d, %s, %d, %s, %s, %s, %s, 1, "
            "1, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %d);"
            % (event, line, "NULL" if item is None else str(item), kind, status,
               q("items[%d]" % line), quantity, q(ts), q(ts), q(source), q(ref),
               "NULL" if frm is None else frm, "NULL" if to is None else to,
               "NULL" if carrier is None else carrier, q(origin[0]), q(origin[1]), origin[2],
               origin[3], q(place[0]), q(place[1]), place[2], place[3], q(consignment),
               q(case_ref), "true" if launch else "false", condition))

    def text(self):
        return "\n".join(self.sql + ["COMMIT;"]) + "\n"


LEER = ("Leer", "DE", "53.23", "7.45")
DUNKERQUE = ("Dunkerque", "FR", "51.03", "2.37")
GRAVELINES = ("Gravelines", "FR", "50.9866", "2.1286")
NL = ("Rotterdam", "NL", "51.92", "4.48")


def build():
    f = Fixture()
    # events
    f.event(5, 1, "distributor.nl.yamaha", "SO-5", TS[5], ["6E5X1016532"])
    f.event(1, 1, "retailer.de.boote-nord", "INV-1", TS[1], ["6E5X1016523", "6E5X1016524"])
    f.event(4, 1, "retailer.de.boote-nord", "INV-2", TS[4], ["6E5X2000001"])
    f.event(2, 2, "carrier.be.transeuropa", "CMR-1", TS[2], ["6E5X1016523"])
    f.event(3, 3, "police.fr.pas-de-calais", "PV-1", TS[3],
            ["6E5X1016523", "6E5X1016532", "6E5X10?65?3"], ["GBABC00042A399"])
    # items
    gr = ("50.9866", "2.1286", "Gravelines", "FR", q(TS[3]))
    f.item(1024, 1024, "6E5X1016523", 1, last=gr)
    f.item(5121, 1024, "6E5X1016532", 5, last=("51.92", "4.48", "Rotterdam", "NL", q(TS[5])))
    f.item(1025, 1025, "6E5X1016524", 1, last=("53.23", "7.45", "Leer", "DE", q(TS[1])))
    f.item(4096, 4096, "6E5X2000001", 4, last=("53.23", "7.45", "Leer", "DE", q(TS[4])))
    f.item(3073, 3073, "6E5X10?65?3", 3, partial=True, last=gr)
    f.item(3074, 3074, "GBABC00042A399", 3, kind=2, maker="", model="", key_kind=2, last=gr)
    f.sql.append("INSERT INTO prov_merges (item_id, into_id, event_id, reason) VALUES (5121, 1024, "
                 "3, 'one equipment read as 6E5X1016523 (plate) and 6E5X1016532 (stamp)');")
    # readings
    f.reading(5, "purchase.items[0].equipment.serials[0]", 5121, "6E5X1016532", "6E5X1016532",
              method=4)
    f.reading(1, "purchase.items[0].equipment.serials[0]", 1024, "6E5X1016523", "6E5-X-1016523")
    f.reading(1, "purchase.items[1].equipment.serials[0]", 1025, "6E5X1016524", "6E5-X-1016524")
    f.reading(2, "shipment.items[0].equipment.serials[0]", 1024, "6E5X1016523", "6E5X1016523",
              method=4)
    f.reading(3, "seizure.items[0].equipment.serials[0]", 1024, "6E5X1016523", "6E5X1O16523")
    f.reading(3, "seizure.items[0].equipment.serials[1]", 5121, "6E5X1016532", "6E5X1016532",
              method=2)
    f.reading(3, "seizure.items[1].equipment.serials[0]", 3073, "6E5X10?65?3", "6E5X10?65?3",
              method=2, completeness=2)
    f.reading(3, "seizure.items[2].equipment.hull_number", 3074, "GBABC00042A399",
              "GB-ABC00042-A3-99", method=0, completeness=0, key_kind=2)
    f.item(4097, 4097, "6E5X4000001", 4, last=("53.23", "7.45", "Leer", "DE", q(TS[4])))
    # parties
    f.party(5 * 1024, 5, "seller", 2, "Yamaha Distributor NL", "NL")
    f.party(5 * 1024 + 1, 5, "buyer", 2, "Boote Nord GmbH", "DE", "leer", "Leer",
            [("vat", "DE811907980")])
    f.party(1024, 1, "seller", 2, "Boote Nord GmbH", "DE", "leer", "Leer", [("vat", "DE811907980")])
    f.party(1025, 1, "buyer", 1, "A. Karimi", "DE", "", "", [("phone", "+4915123456789")])
    f.party(4 * 1024, 4, "seller", 2, "Boote Nord GmbH", "DE", "leer", "Leer",
            [("vat", "DE811907980")])
    f.party(4 * 1024 + 1, 4, "buyer", 1, "A. Karimi", "DE", "", "",
            [("phone", "+4915123456789"), ("email", "a.karimi@example.org"),
             ("phone", "+33999999999")])
    f.party(2048, 2, "shipper", 1, "A. Karimi", "DE", "", "", [("phone", "+4915123456789")])
    f.party(2049, 2, "carrier", 2, "Trans Europa BV", "BE")
    f.party(2050, 2, "consignee", 1, "M. Rahimi", "FR", "dunkerque", "Dunkerque")
    f.party(3072, 3, "agency", 3, "Gendarmerie nationale", "FR")
    # hops
    f.hop(5, 0, 5121, 1, "distributor.nl.yamaha", "SO-5", TS[5], frm=5120, to=5121, place=NL)
    f.hop(1, 0, 1024, 1, "retailer.de.boote-nord", "INV-1", TS[1], frm=1024, to=1025, place=LEER)
    f.hop(1, 1, 1025, 1, "retailer.de.boote-nord", "INV-1", TS[1], frm=1024, to=1025, place=LEER)
    f.hop(1, 2, None, 1, "retailer.de.boote-nord", "INV-1", TS[1], frm=1024, to=1025, place=LEER,
          quantity=10)
    f.hop(4, 0, 4096, 1, "retailer.de.boote-nord", "INV-2", TS[4], frm=4096, to=4097, place=LEER)
    f.hop(4, 1, 4097, 1, "retailer.de.boote-nord", "INV-2", TS[4], frm=4096, to=4097, place=LEER)
    f.hop(2, 0, 1024, 2, "carrier.be.transeuropa", "CMR-1", TS[2], frm=2048, to=2050,
          carrier=2049, origin=LEER, place=DUNKERQUE, consignment="TE-88412")
    f.hop(3, 0, 1024, 3, "police.fr.pas-de-calais", "PV-1", TS[3], to=3072, place=GRAVELINES,
          case_ref="2026/0412", launch=True, condition=2)
    f.hop(3, 1, 3073, 3, "police.fr.pas-de-calais", "PV-1", TS[3], to=3072, place=GRAVELINES)
    f.hop(3, 2, 3074, 3, "police.fr.pas-de-calais", "PV-1", TS[3], to=3072, place=GRAVELINES)
    # the consignee passes another engine on
    f.event(6, 1, "retailer.fr.occasions", "FAC-6", TS[6], ["6E5X5000001"])
    f.item(6144, 6144, "6E5X5000001", 6, last=("51.03", "2.37", "Dunkerque", "FR", q(TS[6])))
    f.party(6144, 6, "seller", 1, "M. Rahimi", "FR", "dunkerque", "Dunkerque")
    f.party(6145, 6, "buyer", 1, "K. Unknown", "FR")
    f.hop(6, 0, 6144, 1, "retailer.fr.occasions", "FAC-6", TS[6], frm=6144, to=6145,
          place=DUNKERQUE)
    # 60 engines for paging
    for n in range(60):
        e = 200 + n
        key = "6E5X30000%02d" % n
        ts = "2026-08-%02d 12:00:00+00" % (1 + n % 28)
        f.event(e, 1, "retailer.de.boote-nord", "INV-P%d" % n, ts, [key])
        f.item(e * 1024, e * 1024, key, e)
        f.party(e * 1024, e, "seller", 2, "Boote Nord GmbH", "DE", "leer", "Leer")
        f.party(e * 1024 + 1, e, "buyer", 1, "Buyer %d" % n, "DE")
        f.hop(e, 0, e * 1024, 1, "retailer.de.boote-nord", "INV-P%d" % n, ts, frm=e * 1024,
              to=e * 1024 + 1, place=LEER if n % 2 else DUNKERQUE)
    # a marketplace phone shared by 52 other names
    for n in range(52):
        e = 300 + n
        ts = "2026-07-%02d 12:00:00+00" % (1 + n % 28)
        f.event(e, 1, "marketplace.fr", "AD-%d" % n, ts)
        f.party(e * 1024 + 1, e, "buyer", 1, "Market Buyer %d" % n, "FR", "", "",
                [("phone", "+33999999999")])
    return f.text()


if __name__ == "__main__":
    sys.stdout.write(build())
