-- 0003_reserved: placeholder so that 0004 applies on this branch. Migration 0003
-- belongs to the evidence work (policy versions); the merge replaces this file
-- with it. It changes nothing.
SELECT 1;
