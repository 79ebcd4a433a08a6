#!/usr/bin/env bash
# Outbound safety (issue 14, SSRF): with the default evmgmt.outbound_allow =
# '*' the dispatcher reaches public addresses only; loopback, private,
# link-local (cloud metadata), CGNAT, multicast and the IPv6 and mapped forms
# of them are refused unless a superuser names them, checked on the address
# actually connected to (a host name, an IPv4-mapped IPv6 literal and 0.0.0.0
# all end at the local sink, and all are refused); an open and a closed local
# port give the same error; a non-superuser admin never reads the body of an
# internal service back.  Real connections to a local sink.  Prints TAP.
set -uo pipefail
cd "$(dirname "$0")/../.."
. test/tools/itest.sh

plan 9
DB=evmgmt_it_outbound
new_db $DB
wait_for 20 has_worker $DB || { echo "Bail out! no worker"; exit 1; }
set_guc evmgmt.max_attempts 1
start_http_sink api
API=$SINK_PORT
CLOSED=$(free_port)

# allowed LIST...: which of a fixed list of addresses evmgmt.outbound_allowed() lets through
ADDRS="127.0.0.1 127.0.0.2 0.0.0.0 10.1.2.3 172.16.0.1 192.168.1.1 100.64.0.1 169.254.169.254 224.0.0.1 255.255.255.255
	:: ::1 ::ffff:127.0.0.1 ::127.0.0.1 ::ffff:169.254.169.254 fc00::1 fd00:ec2::254 fe80::1 ff02::1 64:ff9b::7f00:1 2002:7f00:1::1
	8.8.8.8 1.1.1.1 2606:4700:4700::1111"
allowed() {
	q $DB "SELECT string_agg(a, ' ' ORDER BY o) FROM unnest(string_to_array('$(echo $ADDRS)', ' ')) WITH ORDINALITY x(a, o)
	       WHERE evmgmt.outbound_allowed(a::inet)"
}
set_guc evmgmt.outbound_allow '*'
is "$(allowed)" "8.8.8.8 1.1.1.1 2606:4700:4700::1111" "'*' allows public addresses only (IPv4, IPv6, mapped and embedded forms refused)"
set_guc evmgmt.outbound_allow '0.0.0.0/0, ::/0'
is "$(allowed)" "8.8.8.8 1.1.1.1 2606:4700:4700::1111" "so do 0.0.0.0/0 and ::/0: special ranges must be named"
set_guc evmgmt.outbound_allow '127.0.0.1/32, fc00::/7, 169.254.169.254'
is "$(allowed)" "127.0.0.1 169.254.169.254 ::ffff:127.0.0.1 ::127.0.0.1 ::ffff:169.254.169.254 fc00::1 fd00:ec2::254" \
	"named blocks are allowed, mapped forms as their IPv4 address, nothing else"

# Real connections under the default: every way to the local sink is refused before connecting.
set_guc evmgmt.outbound_allow '*'
q $DB "
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint) VALUES
 ('v4', 'webhook', 'webhook', 'http://127.0.0.1:$API/500/a'),
 ('name', 'webhook', 'webhook', 'http://localhost:$API/500/b'),
 ('mapped', 'webhook', 'webhook', 'http://[::ffff:127.0.0.1]:$API/500/c'),
 ('zero', 'webhook', 'webhook', 'http://0.0.0.0:$API/500/d'),
 ('other', 'webhook', 'webhook', 'http://127.0.0.2:$API/500/e'),
 ('closed', 'webhook', 'webhook', 'http://127.0.0.1:$CLOSED/f');
INSERT INTO evmgmt.notification (kind, channel, provider_id, recipient, body, payload)
SELECT 'test', 'webhook', p, 'ops', 'to ' || p, '{}' FROM unnest(ARRAY['v4', 'name', 'mapped', 'zero', 'other', 'closed']) p;" >/dev/null
wait_for 30 sql_true $DB "SELECT count(*) = 6 FROM evmgmt.notification WHERE state = 'dead'"
ok $? "six notifications to local addresses end dead"
# (localhost resolves to ::1 or 127.0.0.1, whichever the resolver gives first)
is "$(q $DB "SELECT string_agg(provider_id || '=' || regexp_replace(last_error, '^connection to (.*) refused: the address is not in evmgmt.outbound_allow$', 'refused \1'), ', ' ORDER BY notification_id) FROM evmgmt.notification" |
	sed -E 's/name=refused (::1|127\.0\.0\.1)/name=refused localhost/')" \
	"v4=refused 127.0.0.1, name=refused localhost, mapped=refused ::ffff:127.0.0.1, zero=refused 0.0.0.0, other=refused 127.0.0.2, closed=refused 127.0.0.1" \
	"each refused on its resolved address, an open and a closed port alike"
is "$(log_lines api)" 0 "nothing reached the sink"

# Allowed explicitly (as the test harness does): a non-superuser admin gets the status and the length, never the body.
set_guc evmgmt.outbound_allow '127.0.0.1/32'
q postgres "DROP ROLE IF EXISTS evmgmt_it_admin; CREATE ROLE evmgmt_it_admin LOGIN PASSWORD 'adm' IN ROLE evmgmt_admin" >/dev/null
IT_CLEANUP+=("dropdb --if-exists $DB; psql -XqAt -d postgres -c 'DROP ROLE IF EXISTS evmgmt_it_admin'")
# the admin points a provider at the internal service; the engine's page (written here directly) goes there
PGUSER=evmgmt_it_admin PGPASSWORD=adm q $DB "
INSERT INTO evmgmt.channel_provider (provider_id, channel, kind, endpoint) VALUES ('internal', 'webhook', 'webhook', 'http://127.0.0.1:$API/500/internal')" >/dev/null
q $DB "INSERT INTO evmgmt.notification (kind, channel, provider_id, recipient, body, payload) VALUES ('test', 'webhook', 'internal', 'ops', 'probe', '{}')" >/dev/null
wait_for 30 sql_true $DB "SELECT state = 'dead' FROM evmgmt.notification WHERE provider_id = 'internal'"
ok $? "the internal service answered (500) and the notification is dead"
is "$(PGUSER=evmgmt_it_admin PGPASSWORD=adm q $DB "SELECT n.last_error || ' | ' || a.error FROM evmgmt.notification n JOIN evmgmt.delivery_attempt a USING (notification_id) WHERE n.provider_id = 'internal'" | sed -E 's/[0-9]+ bytes/N bytes/g')" \
	"HTTP 500: response body of N bytes not stored (gave up after 1 attempts) | HTTP 500: response body of N bytes not stored (gave up after 1 attempts)" "the admin reads the status and the length of the body"
is "$(q $DB "SELECT count(*) FROM evmgmt.notification n JOIN evmgmt.delivery_attempt a USING (notification_id) WHERE (n.last_error || a.error) LIKE '%sink mode%'")" 0 \
	"the body of the internal service is stored nowhere"

it_done
