-- 0005: reserved for the policyjit branch, which landed without a migration.
-- Nothing to do; kept so that migration numbers have no gap.
SELECT 1;
