package ssh

// Tests of the Warden patch that writes each packet in one Write
// (cipher.go, README.warden.md).

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"encoding/binary"
	"io"
	mrand "math/rand/v2"
	"net"
	"testing"
)

// countingConn records the size of every Write it is given, the system
// calls a socket under the transport would see.
type countingConn struct {
	bytes.Buffer
	writes []int
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, len(p))
	return c.Buffer.Write(p)
}

func (c *countingConn) Close() error { return nil }

// TestTransportWritesEachPacketOnce: with every cipher family, a packet of
// any size, bulk ones included, reaches the connection in exactly one
// Write, and reads back. Upstream, AES-GCM wrote a 32 KiB packet as a 4 KiB
// piece and the rest, and the CTR ciphers as three pieces: two or three
// system calls and TCP segments per packet where one does.
func TestTransportWritesEachPacketOnce(t *testing.T) {
	kr := &kexResult{Hash: crypto.SHA256}
	for _, algs := range []DirectionAlgorithms{
		{Cipher: "none"}, // the transport before its first key exchange
		{Cipher: CipherAES128GCM},
		{Cipher: CipherAES256GCM},
		{Cipher: CipherChaCha20Poly1305},
		{Cipher: CipherAES128CTR, MAC: HMACSHA256},
		{Cipher: CipherAES256CTR, MAC: HMACSHA256ETM},
		{Cipher: CipherAES128CTR, MAC: HMACSHA512ETM},
		{Cipher: CipherAES128CTR, MAC: HMACSHA1},
	} {
		t.Run(algs.Cipher+"/"+algs.MAC, func(t *testing.T) {
			conn := &countingConn{}
			tr := newTransport(conn, rand.Reader, true)
			rd := newTransport(struct {
				io.Reader
				io.Writer
				io.Closer
			}{&conn.Buffer, io.Discard, conn}, rand.Reader, false)
			if algs.Cipher != "none" {
				algs.compression = compressionNone
				w, err := newPacketCipher(clientKeys, algs, kr)
				if err != nil {
					t.Fatal(err)
				}
				r, err := newPacketCipher(clientKeys, algs, kr)
				if err != nil {
					t.Fatal(err)
				}
				tr.writer.packetCipher, rd.reader.packetCipher = w, r
			}
			for _, n := range []int{1, 40, 4095, 4096, 4097, 32 << 10, 32<<10 + 9, 200000} {
				p := make([]byte, n)
				rand.Read(p)
				p[0] = msgChannelData // not msgNewKeys, whatever rand gave
				want := bytes.Clone(p)
				conn.writes = nil
				if err := tr.writePacket(p); err != nil {
					t.Fatal(err)
				}
				if len(conn.writes) != 1 {
					t.Fatalf("%d-byte packet: %d writes %v, want 1", n, len(conn.writes), conn.writes)
				}
				if !bytes.Equal(p, want) {
					t.Fatalf("%d-byte packet: the caller's packet was changed", n)
				}
				got, err := rd.readPacket()
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("%d-byte packet: read back %d bytes, %v", n, len(got), err)
				}
			}
		})
	}
}

// BenchmarkTransportWriteTCP: bulk packets (a full 32 KiB channel data
// message each) written through the transport to a loopback TCP socket
// that another goroutine drains, the path of a session's output from the
// gateway to the client. Against the upstream writes, measured on the
// project's 2-core VM: AES-GCM 1.5-1.8 GB/s before, 1.8-2.2 after; CTR with
// an EtM MAC 0.76-0.78 before, 1.0 after.
func BenchmarkTransportWriteTCP(b *testing.B) {
	for _, c := range []string{CipherAES128GCM, CipherChaCha20Poly1305, CipherAES128CTR} {
		b.Run(c, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			drained := make(chan struct{})
			go func() {
				defer close(drained)
				s, err := ln.Accept()
				if err != nil {
					return
				}
				defer s.Close()
				_, _ = io.Copy(io.Discard, s)
			}()
			conn, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			tr := newTransport(conn, rand.Reader, true)
			algs := DirectionAlgorithms{Cipher: c, MAC: HMACSHA256ETM, compression: compressionNone}
			w, err := newPacketCipher(clientKeys, algs, &kexResult{Hash: crypto.SHA256})
			if err != nil {
				b.Fatal(err)
			}
			tr.writer.packetCipher = w
			p := make([]byte, 32<<10+9)
			b.SetBytes(int64(len(p)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				// Upstream's stream ciphers encrypted p in place: set the
				// type each time, so that the two can be compared.
				p[0] = msgChannelData
				if err := tr.writePacket(p); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			conn.Close()
			<-drained
		})
	}
}

// upstreamWriteGCM and upstreamWriteStream are x/crypto v0.59.0's
// writeCipherPacket for AES-GCM and the stream ciphers, as they were
// before the patch (several Writes; the stream cipher encrypts packet in
// place), kept here as the reference the patched code must match byte
// for byte.
func upstreamWriteGCM(c *gcmCipher, w io.Writer, rand io.Reader, packet []byte) error {
	padding := byte(packetSizeMultiple - (1+len(packet))%packetSizeMultiple)
	if padding < 4 {
		padding += packetSizeMultiple
	}
	length := uint32(len(packet) + int(padding) + 1)
	var prefix [4]byte
	binary.BigEndian.PutUint32(prefix[:], length)
	if _, err := w.Write(prefix[:]); err != nil {
		return err
	}
	buf := make([]byte, length)
	buf[0] = padding
	copy(buf[1:], packet)
	if _, err := io.ReadFull(rand, buf[1+len(packet):]); err != nil {
		return err
	}
	buf = c.aead.Seal(buf[:0], c.iv, buf, prefix[:])
	if _, err := w.Write(buf); err != nil {
		return err
	}
	c.incIV()
	return nil
}

func upstreamWriteStream(s *streamPacketCipher, seqNum uint32, w io.Writer, rand io.Reader, packet []byte) error {
	aadlen := 0
	if s.mac != nil && s.etm {
		aadlen = 4
	}
	paddingLength := packetSizeMultiple - (prefixLen+len(packet)-aadlen)%packetSizeMultiple
	if paddingLength < 4 {
		paddingLength += packetSizeMultiple
	}
	length := len(packet) + 1 + paddingLength
	var prefix [prefixLen]byte
	binary.BigEndian.PutUint32(prefix[:], uint32(length))
	prefix[4] = byte(paddingLength)
	padding := make([]byte, paddingLength)
	if _, err := io.ReadFull(rand, padding); err != nil {
		return err
	}
	var seq [4]byte
	if s.mac != nil {
		s.mac.Reset()
		binary.BigEndian.PutUint32(seq[:], seqNum)
		s.mac.Write(seq[:])
		if s.etm {
			s.cipher.XORKeyStream(prefix[4:5], prefix[4:5])
		}
		s.mac.Write(prefix[:])
		if !s.etm {
			s.mac.Write(packet)
			s.mac.Write(padding)
		}
	}
	if !(s.mac != nil && s.etm) {
		s.cipher.XORKeyStream(prefix[:], prefix[:])
	}
	s.cipher.XORKeyStream(packet, packet)
	s.cipher.XORKeyStream(padding, padding)
	if s.mac != nil && s.etm {
		s.mac.Write(packet)
		s.mac.Write(padding)
	}
	for _, b := range [][]byte{prefix[:], packet, padding} {
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	if s.mac != nil {
		if _, err := w.Write(s.mac.Sum(nil)); err != nil {
			return err
		}
	}
	return nil
}

// TestPacketsAsUpstreamWroteThem: with the same keys and the same padding
// bytes, the patched AES-GCM and stream ciphers put on the wire exactly
// the bytes upstream's code did, packet after packet (the GCM nonce and the
// CTR keystream carry on from one packet to the next, so a packet that
// used either wrongly would show in those after it).
func TestPacketsAsUpstreamWroteThem(t *testing.T) {
	kr := &kexResult{Hash: crypto.SHA256}
	sizes := []int{1, 15, 16, 17, 40, 1023, 1024, 1025, 4095, 4096, 32 << 10, 32<<10 + 9, 200000, 3}
	for _, algs := range []DirectionAlgorithms{
		{Cipher: CipherAES128GCM},
		{Cipher: CipherAES256GCM},
		{Cipher: CipherAES128CTR, MAC: HMACSHA256},
		{Cipher: CipherAES192CTR, MAC: HMACSHA1},
		{Cipher: CipherAES256CTR, MAC: HMACSHA256ETM},
		{Cipher: CipherAES128CTR, MAC: HMACSHA512ETM},
	} {
		t.Run(algs.Cipher+"/"+algs.MAC, func(t *testing.T) {
			algs.compression = compressionNone
			patched, err := newPacketCipher(clientKeys, algs, kr)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := newPacketCipher(clientKeys, algs, kr)
			if err != nil {
				t.Fatal(err)
			}
			// The same padding bytes on both sides: two readers of one seed.
			seed := [32]byte{7}
			randP, randR := mrand.NewChaCha8(seed), mrand.NewChaCha8(seed)
			var got, want bytes.Buffer
			for seq, n := range sizes {
				p := make([]byte, n)
				rand.Read(p)
				if err := patched.writeCipherPacket(uint32(seq), &got, randP, p); err != nil {
					t.Fatal(err)
				}
				p = bytes.Clone(p)
				switch r := ref.(type) {
				case *gcmCipher:
					err = upstreamWriteGCM(r, &want, randR, p)
				case *streamPacketCipher:
					err = upstreamWriteStream(r, uint32(seq), &want, randR, p)
				default:
					t.Fatalf("unexpected cipher %T", r)
				}
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.Bytes(), want.Bytes()) {
					t.Fatalf("packet %d (%d bytes): the patched cipher wrote other bytes than upstream", seq, n)
				}
			}
		})
	}
}
