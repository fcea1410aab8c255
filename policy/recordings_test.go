package policy

import (
	"testing"
	"time"
)

func TestRecordingsDefaultsToLocal(t *testing.T) {
	c, err := Parse([]byte("{}\n"), "/etc/warden/warden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Recordings.Store != StoreLocal || c.Recordings.UploadInterval.Std() != 10*time.Second {
		t.Fatalf("recordings defaults %+v", c.Recordings)
	}
}

func TestRecordingsS3(t *testing.T) {
	c, err := Parse(fixture(
		"recordings:",
		"  store: s3",
		"  upload_interval: 2s",
		"  s3: {endpoint: s3.example:9000, bucket: warden, prefix: recordings/, access_key_file: keys/ak, secret_key_file: /etc/warden/sk}",
	), "/etc/warden/warden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := S3{Endpoint: "s3.example:9000", Bucket: "warden", Prefix: "recordings/", Region: "us-east-1",
		AccessKeyFile: "/etc/warden/keys/ak", SecretKeyFile: "/etc/warden/sk", TLS: true}
	if c.Recordings.Store != StoreS3 || c.Recordings.S3 != want || c.Recordings.UploadInterval.Std() != 2*time.Second {
		t.Fatalf("recordings %+v, want s3 %+v every 2s", c.Recordings, want)
	}
	c, err = Parse(fixture("recordings: {store: s3, s3: {endpoint: '[::1]:9000', bucket: w.x-1, region: eu-west-3, access_key_file: a, secret_key_file: s, tls: false}}"), "/w.yaml")
	if err != nil || c.Recordings.S3.TLS || c.Recordings.S3.Region != "eu-west-3" {
		t.Fatalf("%v %+v", err, c.Recordings)
	}
}

func TestRecordingsErrors(t *testing.T) {
	s3 := func(fields string) []byte {
		return fixture("recordings:", "  store: s3", "  s3: {"+fields+"}")
	}
	const keys = "access_key_file: a, secret_key_file: s"
	runErrCases(t, []errCase{
		{"unknown store", fixture("recordings: {store: gcs}"),
			[]string{`1: unknown recordings store "gcs" (hint: use local or s3)`}},
		{"s3 without its section", fixture("recordings: {store: s3}"),
			[]string{`1: store s3 needs an s3 section (hint: e.g. s3: {endpoint: s3.example:9000, bucket: warden, access_key_file: ..., secret_key_file: ...})`}},
		{"s3 section with store local", fixture("recordings: {s3: {bucket: b}}"),
			[]string{`1: recordings.s3 only applies to store s3 (hint: set store: s3, or remove it)`}},
		{"endpoint with a scheme", s3("endpoint: 'https://s3.example:9000', bucket: warden, " + keys),
			[]string{`3: invalid endpoint "https://s3.example:9000" (hint: host:port without a scheme, e.g. s3.example:9000 (tls: true chooses https))`}},
		{"endpoint with a path", s3("endpoint: 's3.example:9000/other', bucket: warden, " + keys),
			[]string{`3: invalid endpoint "s3.example:9000/other" (hint: host:port without a scheme, e.g. s3.example:9000 (tls: true chooses https))`}},
		{"bucket with a slash", s3("endpoint: 's:9000', bucket: a/b, " + keys),
			[]string{`3: invalid bucket "a/b" (hint: 3 to 63 characters from a-z, 0-9, '.' and '-', starting and ending with a letter or digit)`}},
		{"prefix climbing out", s3("endpoint: 's:9000', bucket: warden, prefix: ../other/, " + keys),
			[]string{`3: invalid prefix "../other/" (hint: e.g. recordings/ : segments of [A-Za-z0-9._-] each ending in '/', no '..')`}},
		{"prefix without its slash", s3("endpoint: 's:9000', bucket: warden, prefix: recs, " + keys),
			[]string{`3: invalid prefix "recs" (hint: e.g. recordings/ : segments of [A-Za-z0-9._-] each ending in '/', no '..')`}},
		{"keys inline are not a thing", s3("endpoint: 's:9000', bucket: warden, access_key: AKIA"),
			[]string{
				`3: unknown key "access_key" in recordings.s3 (hint: expected one of: access_key_file, bucket, endpoint, prefix, region, secret_key_file, tls)`,
				`3: recordings.s3 needs access_key_file (hint: keys are read from files so the policy holds no secret)`,
				`3: recordings.s3 needs secret_key_file (hint: keys are read from files so the policy holds no secret)`,
			}},
		{"upload interval above 10s", fixture("recordings: {upload_interval: 30s}"),
			[]string{`1: upload_interval 30s is outside 1s..10s (hint: the object store may be at most 10s behind a session)`}},
	})
}
