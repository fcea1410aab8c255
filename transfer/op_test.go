package transfer

import "testing"

func TestOpString(t *testing.T) {
	tests := []struct {
		name string
		op   Op
		want string
	}{
		{"put with bytes", Op{Kind: KindPut, Path: "/tmp/a.bin", Bytes: 1048576, Mode: 0o644}, "put /tmp/a.bin (1048576 bytes)"},
		{"get of nothing", Op{Kind: KindGet, Path: "/etc/hosts"}, "get /etc/hosts (0 bytes)"},
		{"failed get", Op{Kind: KindGet, Path: "/etc/shadow", Failed: true}, "get /etc/shadow (0 bytes, failed)"},
		{"rename", Op{Kind: KindRename, Path: "/a", Path2: "/b"}, "rename /a -> /b"},
		{"symlink", Op{Kind: KindSymlink, Path: "/l", Path2: "/t"}, "symlink /l -> /t"},
		{"link failed", Op{Kind: KindLink, Path: "/l", Path2: "/t", Failed: true}, "link /l -> /t (failed)"},
		{"copy", Op{Kind: KindCopy, Path: "/a", Path2: "/b"}, "copy /a -> /b"},
		{"copy from an unknown handle", Op{Kind: KindCopy, Path2: "/b"}, `copy "" -> /b`},
		{"error text", Op{Kind: KindError, Path: "scp: /x: Permission denied"}, `error "scp: /x: Permission denied"`},
		{"error text with a forged second line", Op{Kind: KindError, Path: "no\nput /etc/passwd (1 bytes)"}, `error "no\nput /etc/passwd (1 bytes)"`},
		{"mkdir hides its mode", Op{Kind: KindMkdir, Path: "/x", Mode: 0o777}, "mkdir /x"},
		{"remove failed", Op{Kind: KindRemove, Path: "/etc/passwd", Failed: true}, "remove /etc/passwd (failed)"},
		{"rmdir", Op{Kind: KindRmdir, Path: "/x"}, "rmdir /x"},
		{"setstat shows the mode", Op{Kind: KindSetstat, Path: "/bin/sh", Mode: 0o4755}, "setstat /bin/sh (mode 4755)"},
		{"setstat without mode", Op{Kind: KindSetstat, Path: "/x"}, "setstat /x"},
		{"space is quoted", Op{Kind: KindRemove, Path: "/tmp/my file"}, `remove "/tmp/my file"`},
		{"newline cannot forge a line", Op{Kind: KindPut, Path: "a\nput /etc/shadow"}, `put "a\nput /etc/shadow" (0 bytes)`},
		{"arrow cannot forge a rename", Op{Kind: KindRename, Path: "a -> b", Path2: "c"}, `rename "a -> b" -> c`},
		{"quote is quoted", Op{Kind: KindRemove, Path: `a"b`}, `remove "a\"b"`},
		{"invalid UTF-8 is quoted", Op{Kind: KindRemove, Path: "a\xffb"}, `remove "a\xffb"`},
		{"empty path is visible", Op{Kind: KindPut, Path: "", Failed: true}, `put "" (0 bytes, failed)`},
		{"non-ASCII letters stay readable", Op{Kind: KindRemove, Path: "/tmp/größe"}, "remove /tmp/größe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.op.String(); got != tt.want {
				t.Fatalf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}
