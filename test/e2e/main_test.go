// Package e2e installs the project the way users do and watches it work: `helm install` of the whole chart on a real
// kube-apiserver and kube-controller-manager, the webhook run from the built image's binary as the chart's pod would
// run it, reached only through the chart's Service, and Flux's own controller Deployments whose pods the controller
// manager creates and the webhook gives their identity. Then the lifecycle (upgrade, policy change, uninstall,
// reinstall), an outage, and the cert-manager install path.
//
// The API server refuses loopback addresses in EndpointSlices, so the suite runs in a private network namespace
// where a documentation address (192.0.2.10, TEST-NET-1) sits on the loopback device: TestMain re-executes the test
// binary there. That needs root.
package e2e

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

const (
	// inNetnsEnv marks the re-executed test binary.
	inNetnsEnv = "FIW_E2E_IN_NETNS"
	// webhookIP is where the emulated pod serves: an address the API server accepts in an EndpointSlice.
	webhookIP = "192.0.2.10"
	// apiServerIP is the API server's advertised address (it needs one, and a namespace without a default route
	// offers none).
	apiServerIP = "192.0.2.1"
)

func TestMain(m *testing.M) {
	if os.Getenv(inNetnsEnv) == "" {
		os.Exit(runInNetns())
	}
	if err := setUpLoopback(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: network namespace: %v\n", err)
		os.Exit(2)
	}
	os.Exit(m.Run())
}

// runInNetns runs this test binary again, with the same arguments, in a new network namespace, and returns its exit
// code. Afterwards it kills whatever is left in that namespace (etcd and kube-apiserver run in their own process
// groups), so an interrupted run leaves no process behind.
func runInNetns() int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e: the end-to-end suite needs root: it runs in a private network namespace "+
			"and runs the image's binary as the image's user (run it through `make e2e` as root)")
		return 2
	}
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(os.Environ(), inNetnsEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: start in a new network namespace: %v\n", err)
		return 2
	}
	netns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", cmd.Process.Pid))
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		for s := range signals {
			_ = cmd.Process.Signal(s)
		}
	}()
	err := cmd.Wait()
	signal.Stop(signals)
	killNetns(netns)
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		return exit.ExitCode()
	}
	fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
	return 2
}

// killNetns kills every process whose network namespace is netns (e.g. "net:[4026532612]"): only this suite's.
func killNetns(netns string) {
	if netns == "" {
		return
	}
	self, _ := os.Readlink("/proc/self/ns/net")
	if netns == self {
		return // never the caller's own namespace
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		if ns, err := os.Readlink(p + "/ns/net"); err == nil && ns == netns {
			if pid, err := strconv.Atoi(filepath.Base(p)); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
}

// setUpLoopback brings the namespace's loopback device up and adds webhookIP/32 and apiServerIP/32 to it (as the
// aliases lo:webhook and lo:api).
func setUpLoopback() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer func() { _ = unix.Close(fd) }()
	lo, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, lo); err != nil {
		return fmt.Errorf("read lo flags: %w", err)
	}
	lo.SetUint16(lo.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, lo); err != nil {
		return fmt.Errorf("bring lo up: %w", err)
	}
	for label, ip := range map[string]string{"lo:webhook": webhookIP, "lo:api": apiServerIP} {
		for _, set := range []struct {
			req  uint
			addr net.IP
		}{{unix.SIOCSIFADDR, net.ParseIP(ip).To4()}, {unix.SIOCSIFNETMASK, net.IPv4(255, 255, 255, 255).To4()}} {
			alias, err := unix.NewIfreq(label)
			if err != nil {
				return err
			}
			if err := alias.SetInet4Addr(set.addr); err != nil {
				return err
			}
			if err := unix.IoctlIfreq(fd, set.req, alias); err != nil {
				return fmt.Errorf("add %s to lo: %w", ip, err)
			}
		}
	}
	return nil
}
