-- Re-runs of a scheduled job are not new evidence (issue 8). A job run at a
-- later time finds the same alerts with the same hops, parties and score;
-- only when it looked differs: "as_of" (rules 5 and 6) and, for rule 6,
-- "quiet_days" (how long nothing has been recorded). Comparing the whole
-- evidence made every open quiet_near_coast and bulk_acquisition alert an
-- 'evidence' update on every run (every six hours, every hour), noise on
-- WatchAlerts with nothing new in it. alert_raise() now compares evidence
-- without those two keys: the alert keeps the evidence of the run that
-- raised or last changed it (with its as_of, so it still says when it was
-- true) until something in it changes. The rest is 0010's function as it
-- was; its owner and grants are kept by CREATE OR REPLACE.
CREATE OR REPLACE FUNCTION alert_raise(p_rule text, p_subject_kind text, p_subject text, p_hub text,
                            p_severity smallint, p_score double precision, p_title text,
                            p_explanation text, p_evidence jsonb, p_known_at timestamptz,
                            p_config_version integer, p_job text, p_source_event bigint,
                            p_job_run bigint, OUT alert_id bigint, OUT outcome text)
LANGUAGE plpgsql AS $$
DECLARE
    a alerts%ROWTYPE;
    s bigint;
BEGIN
    PERFORM alert_seq_lock();
    SELECT * INTO a FROM alerts x
     WHERE x.rule = p_rule AND x.subject_kind = p_subject_kind AND x.subject = p_subject
       AND x.hub = p_hub AND x.state <> 'closed'
     FOR UPDATE;
    IF NOT FOUND THEN
        SELECT * INTO a FROM alerts x
         WHERE x.rule = p_rule AND x.subject_kind = p_subject_kind AND x.subject = p_subject
           AND x.hub = p_hub AND x.state = 'closed'
         ORDER BY x.alert_id DESC LIMIT 1;
        IF FOUND AND (a.evidence - 'as_of' - 'quiet_days') = (p_evidence - 'as_of' - 'quiet_days') THEN
            alert_id := a.alert_id;
            outcome := 'unchanged';
            RETURN;
        END IF;
        INSERT INTO alerts (rule, subject_kind, subject, hub, severity, score, title,
                            explanation, evidence, known_at, config_version, job,
                            source_event, job_run)
        VALUES (p_rule, p_subject_kind, p_subject, p_hub, p_severity, p_score, p_title,
                p_explanation, p_evidence, p_known_at, p_config_version, p_job,
                p_source_event, p_job_run)
        RETURNING alerts.alert_id INTO alert_id;
        INSERT INTO alert_updates (alert_id, kind, by, note, severity, known_at)
        VALUES (alert_id, 'raised', CASE WHEN p_job = '' THEN 'rule ' || p_rule ELSE 'job ' || p_job END,
                p_title, p_severity, p_known_at)
        RETURNING seq INTO s;
        UPDATE alerts SET seq = s WHERE alerts.alert_id = alert_raise.alert_id;
        outcome := 'raised';
    ELSE
        alert_id := a.alert_id;
        IF (a.evidence - 'as_of' - 'quiet_days') = (p_evidence - 'as_of' - 'quiet_days') THEN
            outcome := 'unchanged';
            RETURN;
        END IF;
        INSERT INTO alert_updates (alert_id, kind, by, note, severity, known_at)
        VALUES (a.alert_id, 'evidence', CASE WHEN p_job = '' THEN 'rule ' || p_rule ELSE 'job ' || p_job END,
                'new evidence: ' || p_title, greatest(a.severity, p_severity),
                greatest(a.known_at, p_known_at))
        RETURNING seq INTO s;
        UPDATE alerts x
           SET evidence = p_evidence, explanation = p_explanation, title = p_title,
               severity = greatest(x.severity, p_severity), score = greatest(x.score, p_score),
               known_at = greatest(x.known_at, p_known_at), updated_at = clock_timestamp(),
               updates = x.updates + 1, config_version = p_config_version,
               source_event = coalesce(p_source_event, x.source_event),
               job_run = coalesce(p_job_run, x.job_run), seq = s
         WHERE x.alert_id = a.alert_id;
        outcome := 'updated';
    END IF;
    PERFORM pg_notify('tidewatch_alerts', s::text);
END $$;
