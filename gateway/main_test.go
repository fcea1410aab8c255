package gateway_test

import (
	"os"
	"testing"

	"github.com/warden-gw/warden/internal/storetest"
)

// TestMain runs the suite under the harness switch: with
// WARDEN_STORE=postgres every store the tests open is on PostgreSQL.
func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }
