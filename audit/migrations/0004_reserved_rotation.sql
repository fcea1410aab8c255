-- 0004: placeholder on branch scim only, so that 0006 follows without a gap.
-- The rotation branch owns 0004 (0004_rotations.sql); delete this file when
-- merging, keeping theirs.
SELECT 1;
