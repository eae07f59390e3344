-- The names cleared by up.sql are not kept anywhere: nothing to restore.
SELECT 1;
