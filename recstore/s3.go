package recstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/recorder"
)

// S3 is an S3-compatible object store for recordings. dataDir is the
// node's data directory, whose spools it reads when the store lacks a
// recording. Its methods are safe for concurrent use.
type S3 struct {
	client  *minio.Client
	bucket  string
	prefix  string
	dataDir string
}

// OpenS3 builds the client for cfg, reading the keys from their files.
// The keys are never logged or put in an error. It does not contact the
// store: see [S3.Check].
func OpenS3(cfg policy.S3, dataDir string) (*S3, error) {
	ak, err := readKey(cfg.AccessKeyFile, "access_key_file")
	if err != nil {
		return nil, err
	}
	sk, err := readKey(cfg.SecretKeyFile, "secret_key_file")
	if err != nil {
		return nil, err
	}
	c, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(ak, sk, ""),
		Secure: cfg.TLS,
		Region: cfg.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("recstore: s3 endpoint %s: %w", cfg.Endpoint, err)
	}
	return &S3{client: c, bucket: cfg.Bucket, prefix: cfg.Prefix, dataDir: dataDir}, nil
}

// readKey reads one key from its file: the whole file, surrounding blanks
// trimmed. An error names the file, never its content.
func readKey(path, what string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("recstore: recordings.s3.%s: %w", what, err)
	}
	k := strings.TrimSpace(string(b))
	if k == "" || strings.ContainsAny(k, "\r\n\t ") {
		return "", fmt.Errorf("recstore: recordings.s3.%s %s: want one key on one line", what, path)
	}
	return k, nil
}

// Check makes sure the bucket exists and the keys may read it: a gateway
// that cannot reach its configured store does not start.
func (s *S3) Check(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("recstore: s3 bucket %s at %s: %w", s.bucket, s.client.EndpointURL().Host, err)
	}
	if !ok {
		return fmt.Errorf("recstore: s3 bucket %s at %s does not exist", s.bucket, s.client.EndpointURL().Host)
	}
	return nil
}

// Open returns the recording rel: the final object; else this node's
// spool (whole lines only: a live recorder may be mid-line); else the
// segments concatenated.
func (s *S3) Open(ctx context.Context, rel string) (*Recording, error) {
	key, err := Key(s.prefix, rel)
	if err != nil {
		return nil, err
	}
	obj, size, err := s.get(ctx, key)
	if err == nil {
		return &Recording{ReadCloser: obj, Size: size}, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if r, err := openSpool(s.dataDir, rel); err == nil || !errors.Is(err, os.ErrNotExist) {
		return r, err
	}
	parts, err := s.parts(ctx, key)
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		return nil, fmt.Errorf("recstore: %s: %w", rel, os.ErrNotExist)
	}
	end, gapAt := coverage(parts)
	if gapAt >= 0 {
		return nil, fmt.Errorf("recstore: %s: segments do not tile the recording: gap at byte %d", rel, gapAt)
	}
	return &Recording{ReadCloser: &segmentReader{ctx: ctx, s: s, parts: parts}, Size: end}, nil
}

// get opens one object, with os.ErrNotExist when it is missing.
func (s *S3) get(ctx context.Context, key string) (*minio.Object, int64, error) {
	obj, err := s.client.GetObject(ctx, s.bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, 0, s.wrap(key, err)
	}
	st, err := obj.Stat()
	if err != nil {
		obj.Close()
		return nil, 0, s.wrap(key, err)
	}
	return obj, st.Size, nil
}

// exists reports whether key is stored, with its size.
func (s *S3) exists(ctx context.Context, key string) (bool, int64, error) {
	st, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		err = s.wrap(key, err)
		if errors.Is(err, os.ErrNotExist) {
			return false, 0, nil
		}
		return false, 0, err
	}
	return true, st.Size, nil
}

func (s *S3) wrap(key string, err error) error {
	switch minio.ToErrorResponse(err).Code {
	case "NoSuchKey", "NotFound":
		return fmt.Errorf("recstore: s3 %s: %w", key, os.ErrNotExist)
	}
	return fmt.Errorf("recstore: s3 %s: %w", key, err)
}

// part is one stored segment.
type part struct {
	key       string
	off, size int64
}

// parts lists key's segments in offset order.
func (s *S3) parts(ctx context.Context, key string) ([]part, error) {
	var out []part
	for o := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: key + partsSuffix, Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("recstore: s3 list %s: %w", key+partsSuffix, o.Err)
		}
		if off, ok := parsePartKey(key, o.Key); ok {
			out = append(out, part{key: o.Key, off: off, size: o.Size})
		}
	}
	slices.SortFunc(out, func(a, b part) int { return int(a.off - b.off) })
	return out, nil
}

// coverage returns how many bytes from 0 the segments cover without a gap,
// and the offset of the first gap (-1 when none).
func coverage(parts []part) (end, gapAt int64) {
	for _, p := range parts {
		switch {
		case p.off == end:
			end += p.size
		case p.off < end && p.off+p.size <= end:
			// A repeat of a range already covered (a retried upload).
		default:
			return end, end
		}
	}
	return end, -1
}

// segmentReader reads segments one after the other, opening each when it
// is reached, so a long recording costs one open object at a time.
type segmentReader struct {
	ctx   context.Context
	s     *S3
	parts []part
	next  int64 // the next byte to return
	cur   io.ReadCloser
	left  int64 // bytes of cur still to return
}

func (r *segmentReader) Read(p []byte) (int, error) {
	for r.cur == nil || r.left == 0 {
		if r.cur != nil {
			r.cur.Close()
			r.cur = nil
		}
		i := slices.IndexFunc(r.parts, func(q part) bool { return q.off <= r.next && r.next < q.off+q.size })
		if i < 0 {
			return 0, io.EOF
		}
		q := r.parts[i]
		opts := minio.GetObjectOptions{}
		if skip := r.next - q.off; skip > 0 {
			if err := opts.SetRange(skip, 0); err != nil {
				return 0, err
			}
		}
		obj, err := r.s.client.GetObject(r.ctx, r.s.bucket, q.key, opts)
		if err != nil {
			return 0, r.s.wrap(q.key, err)
		}
		r.cur, r.left = obj, q.off+q.size-r.next
	}
	n, err := r.cur.Read(p[:min(int64(len(p)), r.left)])
	r.left -= int64(n)
	r.next += int64(n)
	if errors.Is(err, io.EOF) {
		if r.left > 0 {
			return n, io.ErrUnexpectedEOF
		}
		err = nil
	}
	return n, err
}

func (r *segmentReader) Close() error {
	if r.cur != nil {
		return r.cur.Close()
	}
	return nil
}

// openSpool opens this node's spool of rel, limited to its whole lines.
func openSpool(dataDir, rel string) (*Recording, error) {
	f, err := recorder.OpenRecording(dataDir, rel)
	if err != nil {
		return nil, err
	}
	n, err := wholeLines(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Recording{ReadCloser: struct {
		io.Reader
		io.Closer
	}{io.LimitReader(f, n), f}, Size: n}, nil
}

// wholeLines returns the length of f up to and including its last newline.
func wholeLines(f *os.File) (int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	const chunk = 64 << 10
	buf := make([]byte, chunk)
	for end := fi.Size(); end > 0; {
		start := max(end-chunk, 0)
		n, err := f.ReadAt(buf[:end-start], start)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}
