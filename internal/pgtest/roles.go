package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
)

// CreateReadOnlyRole makes a login role that may only read the database of
// dsn (one of CreateDatabase's), as the README's auditors' role
// (`warden_audit`: CONNECT and SELECT, nothing else), and returns a DSN
// that connects to that database as it. Attack tests use it to try what
// such a role can do that it should not.
func (s *Server) CreateReadOnlyRole(ctx context.Context, dsn string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	db := strings.TrimPrefix(u.Path, "/")
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	name, pw := "reader_"+hex.EncodeToString(b[:4]), hex.EncodeToString(b[4:])+"Pw"
	if _, err := s.admin.ExecContext(ctx, fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD '%s'`, name, pw)); err != nil {
		return "", fmt.Errorf("pgtest: create role: %w", err)
	}
	if _, err := s.admin.ExecContext(ctx, fmt.Sprintf(`GRANT CONNECT ON DATABASE %s TO %s`, db, name)); err != nil {
		return "", fmt.Errorf("pgtest: grant connect: %w", err)
	}
	return s.dsn(name, pw, db), nil
}
