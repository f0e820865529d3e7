-- Following a party's links (issue 8): the parties that share one of its
-- identifiers, or its name at its address, newest first and capped
-- (services/alerts/rows.h, ALERTS_PARTY_LINKS). With the party id in the
-- index the newest n are read straight off it, backwards: a company's VAT
-- number on hundreds of thousands of records costs n index entries, not
-- all of them sorted. Each index replaces one that is its prefix, so
-- every other reader (search by identifier, by name) is served as before.
CREATE INDEX prov_party_identifiers_link ON prov_party_identifiers (kind, value, party_id);
DROP INDEX prov_party_identifiers_value;
CREATE INDEX prov_parties_name_link ON prov_parties (name_key, address_key, party_id)
    WHERE name_key <> '';
DROP INDEX prov_parties_name;
