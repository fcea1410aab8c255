package s3test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/warden-gw/warden/policy"
)

// EnvBinary names the environment variable that overrides the binary path.
const EnvBinary = "WARDEN_S3DEV"

// Bucket is the bucket Start creates.
const Bucket = "warden-test"

// startTimeout bounds how long the server may take to answer; generous,
// since the machine may be busy compiling.
const startTimeout = time.Minute

// Server is a running versitygw. Stop and Start (again) keep its directory
// and address, so a test can take the store away and bring it back.
type Server struct {
	// Endpoint is "127.0.0.1:PORT" (plain HTTP).
	Endpoint string
	// AccessKey and SecretKey are the root keys, random per server, also
	// written to AccessKeyFile and SecretKeyFile (mode 0600).
	AccessKey, SecretKey         string
	AccessKeyFile, SecretKeyFile string
	// Dir is the posix backend's directory: Dir/BUCKET/KEY are the objects.
	Dir string

	t    testing.TB
	bin  string
	cmd  *exec.Cmd
	wait chan error // the running process's exit
}

// Binary returns the path of the s3dev binary: $WARDEN_S3DEV, or
// ~/.cache/warden/s3dev.
func Binary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".cache", "warden", "s3dev"), nil
}

// Start runs a new versitygw on a free loopback port, waits until it
// answers, creates Bucket, and stops it when the test ends. A missing
// binary fails the test with the command that builds it.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatalf("s3test: locate s3dev: %v", err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("s3test: s3dev binary %s is missing (%v): run `make s3dev` (or set %s)", bin, err, EnvBinary)
	}
	keys := t.TempDir()
	s := &Server{t: t, bin: bin, Dir: t.TempDir(), AccessKey: randHex(t, 10), SecretKey: randHex(t, 20),
		AccessKeyFile: filepath.Join(keys, "access"), SecretKeyFile: filepath.Join(keys, "secret")}
	for f, k := range map[string]string{s.AccessKeyFile: s.AccessKey, s.SecretKeyFile: s.SecretKey} {
		if err := os.WriteFile(f, []byte(k+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.Endpoint = ln.Addr().String()
	ln.Close()
	t.Cleanup(s.Stop)
	s.Start()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := s.Client().MakeBucket(ctx, Bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("s3test: make bucket: %v", err)
	}
	return s
}

// Start (re)starts the server on its address and directory and waits until
// it answers. Call it from the test's goroutine.
func (s *Server) Start() {
	t := s.t
	t.Helper()
	if s.cmd != nil {
		t.Fatalf("s3test: already running")
	}
	cmd := exec.Command(s.bin, "--port", s.Endpoint, "--quiet", "posix", s.Dir)
	// Keys through the environment, not argv: ps shows argv to everyone.
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY_ID="+s.AccessKey, "ROOT_SECRET_ACCESS_KEY="+s.SecretKey)
	cmd.Stdout, cmd.Stderr = t.Output(), t.Output()
	if err := cmd.Start(); err != nil {
		t.Fatalf("s3test: start %s: %v", s.bin, err)
	}
	s.cmd = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := s.Client().ListBuckets(ctx)
		cancel()
		if err == nil {
			break
		}
		select {
		case werr := <-exited:
			s.cmd = nil
			t.Fatalf("s3test: s3dev exited before it answered: %v (last error: %v)", werr, err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("s3test: s3dev did not answer within %v: %v", startTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.wait = exited
}

// Stop kills the server and waits for it; the directory is kept. Stop is
// idempotent.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.wait
	s.cmd = nil
}

// Client returns a minio client for the server with the root keys.
func (s *Server) Client() *minio.Client {
	c, err := minio.New(s.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""), Region: "us-east-1"})
	if err != nil {
		s.t.Fatalf("s3test: client: %v", err)
	}
	return c
}

// Config is the policy's recordings.s3 for this server under prefix.
func (s *Server) Config(prefix string) policy.S3 {
	return policy.S3{Endpoint: s.Endpoint, Bucket: Bucket, Prefix: prefix, Region: "us-east-1",
		AccessKeyFile: s.AccessKeyFile, SecretKeyFile: s.SecretKeyFile}
}

// YAML is the same configuration as a policy's recordings section.
func (s *Server) YAML(prefix string) string {
	return "recordings:\n  store: s3\n  s3: {endpoint: \"" + s.Endpoint + "\", bucket: " + Bucket + ", prefix: \"" + prefix +
		"\", region: us-east-1, access_key_file: " + s.AccessKeyFile + ", secret_key_file: " + s.SecretKeyFile + ", tls: false}\n"
}

// Objects lists the keys under prefix with their sizes.
func (s *Server) Objects(prefix string) map[string]int64 {
	s.t.Helper()
	out := map[string]int64{}
	for o := range s.Client().ListObjects(context.Background(), Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			s.t.Fatalf("s3test: list %s: %v", prefix, o.Err)
		}
		out[o.Key] = o.Size
	}
	return out
}

func randHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
