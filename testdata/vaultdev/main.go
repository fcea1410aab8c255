// Command vaultdev runs a real, in-memory HashiCorp Vault v1.14.1 core for
// Warden's tests. It is not a fake: requests go through Vault's own HTTP
// handler, token store, policy engine, SSH secrets engine and AppRole backend.
//
// It listens on a loopback address, prints one JSON line with the address,
// the root token and the unseal keys, and serves until it is killed. Storage
// lives in memory only, so every start is a fresh Vault.
package main

import (
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/hashicorp/go-hclog"
	kv "github.com/hashicorp/vault-plugin-secrets-kv"
	"github.com/hashicorp/vault/builtin/credential/approle"
	"github.com/hashicorp/vault/builtin/logical/ssh"
	vaulthttp "github.com/hashicorp/vault/http"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/vault"
	testing "github.com/mitchellh/go-testing-interface"
)

// ready is the single line printed once the server accepts requests.
type ready struct {
	Addr       string   `json:"addr"`
	RootToken  string   `json:"root_token"`
	UnsealKeys []string `json:"unseal_keys"` // hex, for tests that seal and unseal
}

func main() {
	addr := flag.String("addr", "127.0.0.1:0", "loopback address to listen on")
	flag.Parse()
	if err := run(*addr); err != nil {
		fmt.Fprintln(os.Stderr, "vaultdev:", err)
		os.Exit(1)
	}
}

func run(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	// A dev Vault with a printed root token must never be reachable from
	// another machine.
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("listen address %q is not a loopback IP", addr)
	}

	t := &testing.RuntimeT{}
	core, keys, rootToken := vault.TestCoreUnsealedWithConfig(t, &vault.CoreConfig{
		Logger: hclog.New(&hclog.LoggerOptions{Name: "vaultdev", Level: hclog.Warn, Output: os.Stderr}),
		LogicalBackends: map[string]logical.Factory{
			"ssh": ssh.Factory,
			"kv":  kv.Factory,
		},
		CredentialBackends: map[string]logical.Factory{
			"approle": approle.Factory,
		},
	})

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: vaulthttp.Handler.Handler(&vault.HandlerProperties{Core: core})}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	r := ready{Addr: "http://" + ln.Addr().String(), RootToken: rootToken}
	for _, k := range keys {
		r.UnsealKeys = append(r.UnsealKeys, hex.EncodeToString(k))
	}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		return err
	}

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case <-sig:
		return srv.Close()
	case err := <-errc:
		return err
	}
}
