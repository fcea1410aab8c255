package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx" for the admin connection
)

// BinDir is where Debian's postgresql-15 package installs the server's
// binaries (they are not on PATH).
const BinDir = "/usr/lib/postgresql/15/bin"

// Role is the non-superuser role that owns every test database, as a
// deployment's warden role would.
const Role = "warden"

// Server is one running PostgreSQL server.
type Server struct {
	dir      string // the temporary directory: data/, the socket, the log
	port     int
	runAs    string // "postgres" when started as root, else ""
	superPw  string // the superuser's password, for creating databases
	rolePw   string // Role's password
	admin    *sql.DB
	n        atomic.Int64 // databases created
	halted   atomic.Bool  // between Halt and Resume
	frozen   atomic.Bool  // between Freeze and Thaw
	stopOnce sync.Once
	stopErr  error
}

// Start initialises a data directory in a new temporary directory and
// starts a server on it, listening on 127.0.0.1 on a free port. Stop it
// with Stop.
func Start() (*Server, error) {
	for _, b := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(BinDir, b)); err != nil {
			return nil, fmt.Errorf("pgtest: %s not found in %s: install Debian's postgresql package (apt-get install postgresql): %w", b, BinDir, err)
		}
	}
	s := &Server{superPw: randomHex(), rolePw: randomHex()}
	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("runuser"); err != nil {
			return nil, fmt.Errorf("pgtest: runuser not found (util-linux): %w", err)
		}
		s.runAs = "postgres"
	}
	var err error
	if s.dir, err = os.MkdirTemp("", "warden-pgtest-"); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if err := s.start(); err != nil {
		os.RemoveAll(s.dir)
		return nil, err
	}
	return s, nil
}

func (s *Server) start() error {
	pwfile := filepath.Join(s.dir, "pw")
	if err := os.WriteFile(pwfile, []byte(s.superPw+"\n"), 0o600); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	if s.runAs != "" {
		// The server's user must own its directory and read the password.
		u, err := user.Lookup(s.runAs)
		if err != nil {
			return fmt.Errorf("pgtest: user %s (created by Debian's postgresql package): %w", s.runAs, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, p := range []string{s.dir, pwfile} {
			if err := os.Chown(p, uid, gid); err != nil {
				return fmt.Errorf("pgtest: %w", err)
			}
		}
	}
	data := filepath.Join(s.dir, "data")
	// Local (socket) connections are trusted for pg_ctl's readiness check;
	// everything over TCP, which is what the tests use, needs a password.
	if out, err := s.run("initdb", "-D", data, "-U", "postgres", "--pwfile="+pwfile,
		"--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"); err != nil {
		return fmt.Errorf("pgtest: initdb: %w\n%s", err, out)
	}
	os.Remove(pwfile)
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		if lastErr = s.launch(port); lastErr == nil {
			s.port = port
			return s.connectAdmin()
		}
		// Most likely the port was taken between freePort and the
		// server's bind: try another.
	}
	return lastErr
}

// launch starts the server on its data directory, listening on port.
func (s *Server) launch(port int) error {
	opts := strings.Join([]string{
		"-p " + strconv.Itoa(port),
		"-c listen_addresses=127.0.0.1",
		"-c unix_socket_directories=" + s.dir,
		"-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off",
		"-c max_connections=300", "-c shared_buffers=32MB",
	}, " ")
	out, err := s.run("pg_ctl", "start", "-w", "-t", "120", "-D", filepath.Join(s.dir, "data"), "-l", filepath.Join(s.dir, "server.log"), "-o", opts)
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
		return fmt.Errorf("pgtest: pg_ctl start: %w\n%s\n%s", err, out, log)
	}
	return nil
}

// Halt stops the server as an operator's restart does (pg_ctl stop -m
// fast: sessions are ended, data is kept) and leaves it down until
// Resume. Tests of what clients do when their database goes away use it
// on a server of their own (Start), not on a Shared one.
func (s *Server) Halt() error {
	out, err := s.run("pg_ctl", "stop", "-w", "-t", "120", "-m", "fast", "-D", filepath.Join(s.dir, "data"))
	if err != nil {
		return fmt.Errorf("pgtest: pg_ctl stop: %w\n%s", err, out)
	}
	s.halted.Store(true)
	return nil
}

// Resume starts a halted server again on the same data directory and
// port, so DSNs handed out before still work.
func (s *Server) Resume() error {
	var err error
	// The port is ours, but the old listener's socket may linger an
	// instant after the stop.
	for attempt := 0; attempt < 10; attempt++ {
		if err = s.launch(s.port); err == nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	s.halted.Store(false)
	// The admin pool's connections died with the old server; database/sql
	// drops each on its first failure.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		if err = s.admin.PingContext(ctx); err == nil || ctx.Err() != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Restart halts and resumes the server.
func (s *Server) Restart() error {
	if err := s.Halt(); err != nil {
		return err
	}
	return s.Resume()
}

// run runs a server binary, as the postgres user when started as root.
func (s *Server) run(bin string, args ...string) ([]byte, error) {
	path := filepath.Join(BinDir, bin)
	var cmd *exec.Cmd
	if s.runAs != "" {
		cmd = exec.Command("runuser", append([]string{"-u", s.runAs, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = s.dir
	return cmd.CombinedOutput()
}

func (s *Server) connectAdmin() error {
	db, err := sql.Open("pgx", s.dsn("postgres", s.superPw, "postgres"))
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := db.ExecContext(ctx, fmt.Sprintf(`CREATE ROLE %s LOGIN PASSWORD '%s'`, Role, s.rolePw)); err != nil {
		db.Close()
		return fmt.Errorf("pgtest: create role: %w", err)
	}
	s.admin = db
	return nil
}

// Port is the TCP port the server listens on, on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// dsn is a URL for user with password on database db over TCP.
func (s *Server) dsn(usr, pw, db string) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(usr, pw),
		Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)), Path: "/" + db,
		RawQuery: "sslmode=disable"}
	return u.String()
}

// Own starts a server of the test's own, for a test that halts, restarts
// or freezes it (which would cut the other tests' connections to a Shared
// one), stopped when the test ends, and creates a fresh database on it.
func Own(t testing.TB) (*Server, string) {
	t.Helper()
	srv, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			t.Error(err)
		}
	})
	dsn, err := srv.CreateDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return srv, dsn
}

// CreateDatabase creates a new empty database owned by Role and returns a
// DSN that connects to it as Role.
func (s *Server) CreateDatabase(ctx context.Context) (string, error) {
	name := fmt.Sprintf("test_%d", s.n.Add(1))
	if _, err := s.admin.ExecContext(ctx, `CREATE DATABASE `+name+` OWNER `+Role); err != nil {
		return "", fmt.Errorf("pgtest: create database: %w", err)
	}
	return s.dsn(Role, s.rolePw, name), nil
}

// Stop stops the server and removes its directory. It is safe to call
// more than once.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		if s.frozen.Load() {
			// Stopped processes would not act on pg_ctl's signal.
			s.stopErr = s.Thaw()
		}
		if s.admin != nil {
			s.admin.Close()
		}
		out, err := s.run("pg_ctl", "stop", "-w", "-m", "immediate", "-D", filepath.Join(s.dir, "data"))
		if err != nil && !s.halted.Load() {
			s.stopErr = errors.Join(s.stopErr, fmt.Errorf("pgtest: pg_ctl stop: %w\n%s", err, out))
		}
		s.stopErr = errors.Join(s.stopErr, os.RemoveAll(s.dir))
	})
	return s.stopErr
}

// Shared is a server for one test binary, started by the first Database
// call. The zero value is ready to use; stop it in TestMain after m.Run.
type Shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Server returns the shared server, starting it on first use; a server
// that cannot start fails the test.
func (l *Shared) Server(t testing.TB) *Server {
	t.Helper()
	srv, err := l.Get()
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// Database returns the DSN of a fresh database on the shared server.
func (l *Shared) Database(t testing.TB) string {
	t.Helper()
	dsn, err := l.Server(t).CreateDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// Stop stops the shared server if it was started.
func (l *Shared) Stop() error {
	if l.srv == nil {
		return nil
	}
	return l.srv.Stop()
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func randomHex() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// Get returns the shared server, starting it on first use, for callers
// without a testing.TB (a TestMain, a harness keyed by data directory).
func (l *Shared) Get() (*Server, error) {
	l.once.Do(func() { l.srv, l.err = Start() })
	return l.srv, l.err
}
