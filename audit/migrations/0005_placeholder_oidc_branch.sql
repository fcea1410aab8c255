-- Placeholder on the oidc branch only, so that 0007 has no gap before the
-- other helpers' migrations are merged. The lead deletes this file on merge.
SELECT 1;
