package policy

import (
	"net"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Values of Recordings.Store.
const (
	StoreLocal = "local" // recordings stay under data_dir/recordings (default)
	StoreS3    = "s3"    // recordings go to an S3-compatible object store
)

// Recordings says where finished recordings are kept (CONTRACT §8). The
// gateway always writes its local spool under data_dir first; with
// StoreS3 it uploads the spool while the session lives and keeps one
// object per recording once it ends (package recstore).
type Recordings struct {
	Store string // StoreLocal (default) or StoreS3
	S3    S3     // set when Store is StoreS3
	// UploadInterval is how often a live session's new recording bytes go
	// to the object store: the store is at most this far behind. Default
	// and maximum 10s, minimum 1s.
	UploadInterval Duration
}

// Bounds of recordings.upload_interval.
const (
	defaultUploadInterval = 10 * time.Second
	minUploadInterval     = time.Second
)

// S3 locates the object store. Keys are named by file, never inline, so
// the policy itself holds no secret.
type S3 struct {
	Endpoint      string // host:port, no scheme
	Bucket        string
	Prefix        string // object key prefix, "" or ending in "/"
	Region        string // default "us-east-1"
	AccessKeyFile string // absolute path
	SecretKeyFile string // absolute path
	TLS           bool   // https (default true)
}

// recordings decodes the recordings section.
func (d *decoder) recordings(n *yaml.Node, r *Recordings) {
	r.Store, r.UploadInterval = StoreLocal, Duration(defaultUploadInterval)
	f, ok := d.mapping(n, "recordings", []string{"store", "s3", "upload_interval"})
	if !ok {
		return
	}
	if v, set := d.duration(f.get("upload_interval"), "upload_interval"); set {
		if v.Std() < minUploadInterval || v.Std() > defaultUploadInterval {
			d.hintf(f.get("upload_interval"), "the object store may be at most 10s behind a session", "upload_interval %s is outside 1s..10s", v)
		} else {
			r.UploadInterval = v
		}
	}
	switch s := d.str(f.get("store"), "store"); s {
	case "", StoreLocal:
		if f.get("s3") != nil {
			d.hintf(f.at("s3"), "set store: s3, or remove it", "recordings.s3 only applies to store s3")
		}
	case StoreS3:
		r.Store = StoreS3
		if isNull(f.get("s3")) {
			d.hintf(f.at("s3"), "e.g. s3: {endpoint: s3.example:9000, bucket: warden, access_key_file: ..., secret_key_file: ...}", "store s3 needs an s3 section")
			return
		}
		d.s3(f.get("s3"), &r.S3)
	default:
		d.hintf(f.get("store"), "use local or s3", "unknown recordings store %q", s)
	}
}

// s3 decodes recordings.s3. The endpoint, bucket and prefix reach every
// object key and request the gateway makes, so they are checked by their
// letters here rather than trusted to the client library.
func (d *decoder) s3(n *yaml.Node, s *S3) {
	f, ok := d.mapping(n, "recordings.s3", []string{"endpoint", "bucket", "prefix", "region", "access_key_file", "secret_key_file", "tls"})
	if !ok {
		return
	}
	s.Endpoint = d.str(f.get("endpoint"), "endpoint")
	if s.Endpoint == "" {
		d.hintf(f.at("endpoint"), "host:port, e.g. s3.example:9000", "recordings.s3 needs endpoint")
	} else if host, port, err := net.SplitHostPort(s.Endpoint); err != nil || !validHost(host) || !validPort(port, false) || strings.ContainsAny(s.Endpoint, "/@ \t") {
		d.hintf(f.get("endpoint"), "host:port without a scheme, e.g. s3.example:9000 (tls: true chooses https)", "invalid endpoint %q", s.Endpoint)
	}
	s.Bucket = d.str(f.get("bucket"), "bucket")
	if s.Bucket == "" {
		d.errorf(f.at("bucket"), "recordings.s3 needs bucket")
	} else if !validBucket(s.Bucket) {
		d.hintf(f.get("bucket"), "3 to 63 characters from a-z, 0-9, '.' and '-', starting and ending with a letter or digit", "invalid bucket %q", s.Bucket)
	}
	s.Prefix = d.str(f.get("prefix"), "prefix")
	if s.Prefix != "" && !validPrefix(s.Prefix) {
		d.hintf(f.get("prefix"), "e.g. recordings/ : segments of [A-Za-z0-9._-] each ending in '/', no '..'", "invalid prefix %q", s.Prefix)
	}
	s.Region = d.str(f.get("region"), "region")
	if s.Region == "" {
		s.Region = "us-east-1"
	} else if strings.ContainsFunc(s.Region, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') }) {
		d.hintf(f.get("region"), "e.g. us-east-1", "invalid region %q", s.Region)
	}
	s.AccessKeyFile = d.path(f.get("access_key_file"), "access_key_file")
	if s.AccessKeyFile == "" {
		d.hintf(f.at("access_key_file"), "keys are read from files so the policy holds no secret", "recordings.s3 needs access_key_file")
	}
	s.SecretKeyFile = d.path(f.get("secret_key_file"), "secret_key_file")
	if s.SecretKeyFile == "" {
		d.hintf(f.at("secret_key_file"), "keys are read from files so the policy holds no secret", "recordings.s3 needs secret_key_file")
	}
	s.TLS = true
	if v, set := d.boolean(f.get("tls"), "tls"); set {
		s.TLS = v
	}
}

// validBucket follows S3's bucket naming rules (lower case, digits, '.',
// '-', 3 to 63 characters, a letter or digit at both ends).
func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 || strings.Contains(b, "..") {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && (c != '.' && c != '-' || i == 0 || i == len(b)-1) {
			return false
		}
	}
	return true
}

// validPrefix accepts "a/", "a/b/": segments of [A-Za-z0-9._-] that are
// not "." or "..", each followed by '/'. A prefix is a folder of the
// bucket; anything looser could make two deployments' keys overlap.
func validPrefix(p string) bool {
	if !strings.HasSuffix(p, "/") || len(p) > 256 {
		return false
	}
	for _, seg := range strings.Split(strings.TrimSuffix(p, "/"), "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return false
			}
		}
	}
	return true
}
