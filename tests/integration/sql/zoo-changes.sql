-- zoo-changes.sql: updates and deletes over every table of the zoo,
-- including key changes of composite, domain, enum, range and array keys.
UPDATE p SET b = b + 1, d = 11 WHERE a % 100 = 1;
UPDATE c SET c = 33, d = 44 WHERE a % 100 = 2;
DELETE FROM c WHERE a % 100 = 3;
UPDATE c2 SET c = 3.75, b = 'three' WHERE true;
UPDATE readd SET x = x + 1, y = 'yy';
UPDATE types SET t = 'changed', jb = jb || '{"new": true}', comp = ROW(2, 'two'),
    ca = ca || ARRAY[ROW(3, 'z')]::pair[], e = 'ok' WHERE id % 2 = 0;
UPDATE types SET id = id + 1000 WHERE id = 1;
DELETE FROM types WHERE id = 3;
UPDATE k_comp SET k = ROW((k).x, 'moved') WHERE (k).y = 'a,b';
UPDATE k_comp SET v = 'z' WHERE (k).y IS NULL;
DELETE FROM k_comp WHERE (k).y = 'moved' AND (k).x = 1;
UPDATE k_dom SET k = ROW((k).x + 100, 'e')::dpair;
UPDATE k_dom SET v = 'v2';
UPDATE k_enum SET k = 'ok' WHERE k = 'sad';
UPDATE k_enum SET v = 'w';
UPDATE k_range SET k = int4range(lower(k), upper(k) + 1);
DELETE FROM k_range WHERE lower(k) = 10;
UPDATE k_arr SET k = k || 4;
UPDATE k_multi SET b = b + 1, v = v + 1;
UPDATE k_ident SET v = v || '!';
UPDATE k_ext SET k = upper(k), h = h || 'z=>9' WHERE k = 'mixed2';   -- citext: case-blind
DELETE FROM k_ext WHERE k = 'OTHER2';
DELETE FROM k_ident WHERE v = 'a!';
UPDATE full_odd SET n = n + 10 WHERE pt ~= '(1,2)';
DELETE FROM full_odd WHERE j::text = '[]';
-- the second of each equal pair: the first must be left as it was
UPDATE full_equal SET v = v + 10 WHERE n::text = '1.0';
DELETE FROM full_equal WHERE n::text = '2.5';
DELETE FROM nocols WHERE ctid = (SELECT min(ctid) FROM nocols);
UPDATE "Odd Schema"."Mixed Case" SET "we""ird" = 'done', "ünïcødé" = 'ö';
UPDATE "таблица" SET "значение" = 'новое';
UPDATE parted SET v = v || '+' WHERE id % 3 = 0;
UPDATE parted SET region = 'eu' WHERE region = 'us' AND id % 7 = 0 AND id < 100000;
DELETE FROM parted WHERE id % 5 = 0;
DELETE FROM ONLY p WHERE a = 201;          -- not the child's row with that key
