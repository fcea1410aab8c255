package identity_test

import (
	"os"
	"testing"

	"github.com/warden-gw/warden/internal/storetest"
)

// TestMain reads the harness switch (WARDEN_STORE=postgres: the tests'
// stores are PostgreSQL databases; see internal/storetest).
func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }
