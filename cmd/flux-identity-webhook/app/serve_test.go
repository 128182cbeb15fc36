package app

import (
	"bytes"
	"strings"
	"testing"
)

func TestServeOptionsValidate(t *testing.T) {
	valid := func() ServeOptions {
		o := DefaultServeOptions()
		o.PolicyFile, o.CertDir = "policy.yaml", "/tls"
		return o
	}
	tests := map[string]struct {
		mutate  func(*ServeOptions)
		wantErr []string
	}{
		"the defaults plus policy and cert dir are valid": {mutate: func(*ServeOptions) {}},
		"policy and cert dir are required": {
			mutate:  func(o *ServeOptions) { o.PolicyFile, o.CertDir = "", "" },
			wantErr: []string{"--policy is required", "--cert-dir is required"},
		},
		"mode off is not a server mode": {
			mutate:  func(o *ServeOptions) { o.Mode = "off" },
			wantErr: []string{"--mode must be enforce or warn"},
		},
		"TLS below 1.2 is refused": {
			mutate:  func(o *ServeOptions) { o.TLSMinVersion = "1.1" },
			wantErr: []string{"--tls-min-version must be 1.2 or 1.3"},
		},
		"ports outside 1..65535 are refused": {
			mutate:  func(o *ServeOptions) { o.Port = 70000 },
			wantErr: []string{"--port must be 1..65535"},
		},
		"a tiny body cap is refused": {
			mutate:  func(o *ServeOptions) { o.MaxRequestBytes = 10 },
			wantErr: []string{"--max-request-bytes must be at least 1024"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			o := valid()
			tc.mutate(&o)
			err := o.Validate()
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %v", tc.wantErr)
			}
			for _, want := range tc.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestServeHelpIsGroupedInSections(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Execute(t.Context(), []string{"serve", "--help"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	out := stdout.String()
	last := -1
	for _, section := range []string{"Policy flags:", "Serving flags:", "Observability flags:", "Logging flags:"} {
		i := strings.Index(out, section)
		if i < 0 || i < last {
			t.Fatalf("section %q missing or out of order in:\n%s", section, out)
		}
		last = i
	}
	for _, flag := range []string{"--policy", "--cert-dir", "--port", "--metrics-bind-address",
		"--health-probe-bind-address", "--mode", "--zap-log-level"} {
		if !strings.Contains(out, flag) {
			t.Errorf("help lacks %s", flag)
		}
	}
}

func TestServeRefusesToStartWithoutCertificate(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Execute(t.Context(), []string{"serve", "--policy", writeFile(t, "p.yaml", goodPolicy),
		"--cert-dir", t.TempDir(), "--metrics-bind-address", "0", "--health-probe-bind-address", "127.0.0.1:0"},
		&stdout, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "serving certificate") {
		t.Fatalf("exit %d, stderr %q: want exit 2 naming the serving certificate", code, stderr.String())
	}
}
