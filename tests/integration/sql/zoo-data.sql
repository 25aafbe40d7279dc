-- zoo-data.sql ROUND: rows for zoo-schema.sql; run before the base (round
-- 1) and while streaming (round 2), keys apart by round.
INSERT INTO p VALUES (:r * 100 + 1, 1, 10);
INSERT INTO c (a, b, c, d) VALUES (:r * 100 + 2, 2, 3, 4), (:r * 100 + 3, 5, NULL, 6),
    (:r * 100 + 1, 7, 8, 9);  -- the parent's key again, in the child
INSERT INTO c2 (a, b, c, d) VALUES (:r * 100 + 2, 'two', 2.5, '2024-01-02');
INSERT INTO readd (id, y, z, x) VALUES (:r * 100 + 1, 'y', 7, 9000000000);
INSERT INTO types (b, i2, i4, i8, n, r4, r8, m, t, vc, ch, nm, by, d, tm, tz,
    ts, tstz, iv, u, j, jb, x, bt, vb, ip, cd, mac, mac8, pt, ln, ls, bx, ph,
    pg, ci, tv, tq, lsn, o, rc, rt, ir, nr, dr, tr, fr, imr, e, comp, dom, ia,
    ta, ca, ja, dpa)
SELECT true, -32768, 1073741823, -9223372036854775808, 12345678901234.123456,
    'NaN', '-Infinity', '-12.34', E'tab\there\nnew "line" \\ back', 'varchar',
    'ab', 'a name', '\x00ff10', '0001-01-01 BC', '24:00:00', '23:59:59+14',
    'infinity', '2024-02-29 23:59:59.999999+05:30', '-1 year 2 mons 3 days 04:05:06.7',
    'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"a": [1, 2.50, "x"]}',
    '{"b": {"c": null}}', '<a href="x">t&amp;</a>', B'10101', B'1101110',
    '192.168.1.5/24', '10.0.0.0/8', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05',
    '(1.5,-2)', '{1,-1,0}', '[(0,0),(1,1)]', '((0,0),(2,3))', '[(0,0),(1,1),(2,0)]',
    '((0,0),(1,1),(1,0))', '<(1,1),5>', 'a fat:2 cat:1A', 'fat & (rat | cat)',
    '16/B374D848', 4294967295, 'pg_class', 'int4', '[1,10)', '(-1.5,2.5]',
    '[2024-01-01,2024-12-31)', '[2024-01-01 00:00+00,infinity)', '[1.5,2.5)',
    '{[1,3),[5,7)}', 'happy', ROW(1, 'one,"quoted"')::pair, 42, '{1,NULL,3}',
    '{{"a","b"},{"c",NULL}}', ARRAY[ROW(1, 'x'), ROW(2, NULL)]::pair[],
    ARRAY[ROW(1, '{"k": 1}')]::jpair[], ROW(9, 'dom')::dpair
FROM generate_series(1, 3) g;
INSERT INTO types (t, i4) VALUES (NULL, NULL), ('', 0);
INSERT INTO k_comp VALUES (ROW(:r, 'a,b'), 'x'), (ROW(:r, NULL), 'y');
INSERT INTO k_dom VALUES (ROW(:r, 'd'), 'x');
INSERT INTO k_enum VALUES (CASE WHEN :r = 1 THEN 'sad' ELSE 'happy' END::other.mood, 'x');
INSERT INTO k_range VALUES (int4range(:r * 10, :r * 10 + 5), 'x');
INSERT INTO k_arr VALUES (ARRAY[:r, 2, 3], 'x');
INSERT INTO k_multi VALUES ('a' || :r, '2024-01-01', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 1);
INSERT INTO k_ident (v) VALUES ('a'), ('b');
INSERT INTO k_ext VALUES ('MiXed' || :r, 'a=>1, "b c"=>NULL', ARRAY['x=>y']::hstore[]),
    ('other' || :r, '', NULL);
INSERT INTO full_odd VALUES ('{"a":1}', '(1,2)', '<x/>', ARRAY[ROW(1, '[1]')]::jpair[], :r),
    ('{"a":1}', '(1,2)', '<x/>', ARRAY[ROW(1, '[1]')]::jpair[], :r),
    ('[]', '(0,0)', '<y>z</y>', NULL, :r);
INSERT INTO nocols DEFAULT VALUES;
INSERT INTO nocols DEFAULT VALUES;
INSERT INTO "Odd Schema"."Mixed Case" VALUES (:r, 'q"uote', 'ü');
INSERT INTO "таблица" VALUES (:r, 'значение');
INSERT INTO parted SELECT :r * 10000 + g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, 'v' || g
    FROM generate_series(1, 50) g;
INSERT INTO parted VALUES (:r * 100000 + 5, 'us', 'lo') ON CONFLICT DO NOTHING;
SELECT lo_from_bytea(0, convert_to(repeat('large object ' || :r, 10000), 'UTF8')) WHERE :r = 1;
SELECT lo_from_bytea(0, '\x00010203') WHERE :r = 1;
INSERT INTO full_equal VALUES (1.00, 0, 'ABC', '{1.0}', :r), (1.0, '-0', 'abc', '{1.00}', :r),
    (2.50, 0, 'X', NULL, :r), (2.5, '-0', 'x', NULL, :r);
