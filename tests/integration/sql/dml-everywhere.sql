-- dml-everywhere.sql: prints, for every table of publication logship, an
-- UPDATE that rewrites its first column (same value) on three rows and a
-- DELETE of one row, so that a stream touches every table of a database
-- nobody here wrote, and rows are found again by every kind of replica
-- identity over every type it has (REPLICA IDENTITY FULL included).
SELECT format('UPDATE ONLY %s SET %I = %I WHERE ctid IN (SELECT ctid FROM ONLY %s ORDER BY ctid LIMIT 3);',
        c.oid::regclass, a.attname, a.attname, c.oid::regclass) ||
    format(E'\nDELETE FROM ONLY %s WHERE ctid IN (SELECT ctid FROM ONLY %s ORDER BY ctid DESC LIMIT 1);',
        c.oid::regclass, c.oid::regclass)
FROM pg_publication_tables pt
JOIN pg_namespace n ON n.nspname = pt.schemaname
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
JOIN LATERAL (SELECT attname FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0
    AND NOT attisdropped AND attgenerated = '' AND attidentity <> 'a'
    ORDER BY attnum LIMIT 1) a ON true
WHERE pt.pubname = 'logship' ORDER BY 1;
