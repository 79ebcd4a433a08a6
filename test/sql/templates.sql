-- Message templates: fill_template_fields substitutes every {{field}} in one
-- pass from left to right; text that replaced a field is never expanded
-- again, so an event title cannot pull other fields into a message.
\set VERBOSITY terse
BEGIN;
-- a title that looks like a later field keeps its braces
SELECT evmgmt.fill_template_fields('{{title}} at {{site}}', '{"title": "Call {{site}} now", "site": "BER"}') AS filled;
-- nor is an unknown-looking field inside a value removed
SELECT evmgmt.fill_template_fields('{{tier}}: {{title}}', '{"tier": "SEV1", "title": "Ring {{phone}} please"}') AS filled;
-- a value cannot reach a field that is not in the template
SELECT evmgmt.fill_template_fields('{{a_title}} / {{site}}', '{"a_title": "x {{z_secret}} y", "z_secret": "s3cr3t", "site": "BER"}') AS filled;
-- the rest as before: unknown lower-case fields vanish, other braces stay,
-- numbers and JSON null, the space an empty field leaves, NULL template
SELECT evmgmt.fill_template_fields('A {{nothing}} B {{Not_A_Field}} C {{n}} D {{gone}}', '{"n": 3, "gone": null}') AS filled;
SELECT evmgmt.fill_template_fields('{{{site}}} {{site}}{{site}} {{', '{"site": "BER"}') AS filled;
SELECT evmgmt.fill_template_fields(NULL, '{}') IS NULL AS null_template, evmgmt.fill_template_fields('no fields', NULL) AS no_vars;
-- end to end: an event whose title carries braces, rendered for sms and e-mail
\ir test/fixtures/escalation.psql
SELECT pg_temp.new_event(9901, '2026-03-02 08:00Z', 'BER', 'Router {{site}} down, call {{phone}}');
SELECT pg_temp.classify(9901, 'spec', 'sev1', '2026-03-02 08:00Z');
SELECT m.subject, m.body
FROM evmgmt.render_message('escalation_step', 'sms', 'op1', evmgmt.event_facts(9901) || '{"phone": "+4915112345601"}') m;
SELECT m.subject, position('Router {{site}} down, call {{phone}}' IN m.body) > 0 AS title_verbatim,
	   position('+4915112345601' IN m.body) = 0 AS phone_not_pulled_in
FROM evmgmt.render_message('escalation_step', 'email', 'op1', evmgmt.event_facts(9901) || '{"phone": "+4915112345601"}') m;
ROLLBACK;
