-- dml-everywhere.sql: prints, for every table of publication logship, an
-- INSERT copying two of its rows (where its keys allow), an UPDATE that
-- rewrites its first column (same value) on three rows and a DELETE of one
-- row, so that a stream touches every table of a database nobody here
-- wrote, with every type it has, and rows are found again by every kind of
-- replica identity (REPLICA IDENTITY FULL included).
SELECT format('INSERT INTO %s (%s) SELECT %s FROM ONLY %s ORDER BY ctid LIMIT 2;',
        c.oid::regclass, a.cols, a.cols, c.oid::regclass) ||
    format(E'\nUPDATE ONLY %s SET %I = %I WHERE ctid IN (SELECT ctid FROM ONLY %s ORDER BY ctid LIMIT 3);',
        c.oid::regclass, a.first, a.first, c.oid::regclass) ||
    format(E'\nDELETE FROM ONLY %s WHERE ctid IN (SELECT ctid FROM ONLY %s ORDER BY ctid DESC LIMIT 1);',
        c.oid::regclass, c.oid::regclass)
FROM pg_publication_tables pt
JOIN pg_namespace n ON n.nspname = pt.schemaname
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
JOIN LATERAL (SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) AS cols,
        (array_agg(attname ORDER BY attnum))[1] AS first
    FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0
    AND NOT attisdropped AND attgenerated = '' AND attidentity <> 'a') a ON a.cols IS NOT NULL
WHERE pt.pubname = 'logship' ORDER BY 1;
