package policy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxPolicySize bounds what Load reads: a policy is a few hundred lines, and a
// gateway should not be made to parse an arbitrarily large file.
const maxPolicySize = 4 << 20

var topKeys = []string{
	"listen", "host_key", "data_dir", "http_listen", "http_tls", "http_public_url", "metrics_token_file", "identity", "credentials",
	"recording", "notify", "evidence", "limits", "tenants", "groups", "users", "roles",
	"ssh_algorithms",
	"shutdown_grace",
	"recordings",
	"store",
	"node_id",
}

// Load reads the policy at path and parses it like Parse. It also opens the
// known_hosts files the policy names, so that a host whose key cannot be
// verified is reported now rather than at its first connection. When the
// policy is invalid the error is a *ErrorList.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPolicySize+1))
	if err != nil {
		return nil, fmt.Errorf("policy: read %s: %w", path, err)
	}
	if len(data) > maxPolicySize {
		return nil, fmt.Errorf("policy: %s is larger than %d bytes", path, maxPolicySize)
	}
	return parse(data, path, true)
}

// Parse parses and validates a policy. filename is used in error messages
// and to resolve relative paths; Parse reads no file. When the policy is
// invalid the error is a *ErrorList holding every problem found.
func Parse(data []byte, filename string) (*Config, error) {
	return parse(data, filename, false)
}

func parse(data []byte, filename string, checkFiles bool) (*Config, error) {
	abs, err := filepath.Abs(filename)
	if err != nil {
		return nil, fmt.Errorf("policy: resolve %s: %w", filename, err)
	}
	d := &decoder{file: filename, dir: filepath.Dir(abs), checkFiles: checkFiles}
	sum := sha256.Sum256(data)
	c := &Config{Path: abs, Source: bytes.Clone(data), version: hex.EncodeToString(sum[:])}
	if root := d.document(data); root != nil {
		d.config(root, c)
	}
	if len(d.errs) > 0 {
		slices.SortStableFunc(d.errs, func(a, b Error) int { return a.Line - b.Line })
		return nil, &d.errs
	}
	c.index()
	return c, nil
}

// yamlLine extracts the line from the YAML parser's "yaml: line N: msg".
var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parserProblems are the messages of the YAML parser stage (parserc.go in
// go.yaml.in/yaml/v3 v3.0.6, as in gopkg.in/yaml.v3 v3.0.1 before it).
// Unlike its scanner errors, it reports them with a 0-based line (and no
// line at all on the first line), so they are shifted by one here.
// The tests pin this: if the YAML module fixes it, they fail rather than
// mislead.
var parserProblems = map[string]bool{
	"did not find expected <stream-start>":   true,
	"did not find expected <document start>": true,
	"found undefined tag handle":             true,
	"did not find expected node content":     true,
	"did not find expected '-' indicator":    true,
	"did not find expected key":              true,
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found duplicate %TAG directive":         true,
}

// document parses data into the root mapping node, or reports why it cannot.
func (d *decoder) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.hintf(nil, "start from testdata/policy/valid.yaml", "policy file is empty")
			return nil
		}
		d.syntaxError(err)
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			d.syntaxError(err)
		} else {
			d.hintf(&extra, "remove the '---' separator", "policy file holds more than one YAML document")
		}
		return nil
	}
	if len(doc.Content) != 1 {
		d.errorf(&doc, "policy file is empty")
		return nil
	}
	root := doc.Content[0]
	if isNull(root) {
		d.hintf(root, "start from testdata/policy/valid.yaml", "policy file is empty")
		return nil
	}
	if !d.kind(root, yaml.MappingNode, "the policy") {
		return nil
	}
	return root
}

func (d *decoder) syntaxError(err error) {
	line, msg := 0, strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	if parserProblems[msg] {
		line++
	}
	d.errs = append(d.errs, Error{File: d.file, Line: line, Msg: "YAML syntax: " + msg})
}

// config decodes the root mapping. Sections are decoded in dependency order
// (groups and tenants before the users and roles that refer to them), so
// every reference is checked where it is written; errors are sorted by line
// afterwards.
func (d *decoder) config(root *yaml.Node, c *Config) {
	f, ok := d.mapping(root, "the policy", topKeys)
	if !ok {
		return
	}
	d.settings(f, c)
	d.credentials(f.get("credentials"), &c.Credentials)
	d.recording(f.get("recording"), &c.Recording)
	d.recordings(f.get("recordings"), &c.Recordings) // recordings.go
	d.notify(f.get("notify"), &c.Notify)
	d.evidence(f.get("evidence"), &c.Evidence, c.Credentials.Vault.Address != "")
	d.store(f, &c.Store) // store.go
	d.nodeID(f, c)       // node.go
	d.limits(f.get("limits"), &c.Limits)
	d.identity(f.get("identity"), c) // identity.go
	d.sshAlgorithms(f.get("ssh_algorithms"), &c.SSHAlgorithms)

	tenants := d.tenants(f.get("tenants"), c)
	groups := d.groups(f.get("groups"), c, tenants)
	d.users(f.get("users"), c, groups)
	d.identityDirectories(f.get("identity"), c, tenants)
	d.roles(f.get("roles"), c, refs{
		groups:  groups,
		tenants: tenants,
		vault:   c.Credentials.Vault.Address != "",
	})
}
