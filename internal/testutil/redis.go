package testutil

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Redis is a redis-server that StartRedis started for one test, on a free
// loopback port, with its own temporary directory, saving nothing.
type Redis struct {
	// Addr is its host:port on 127.0.0.1.
	Addr string

	cmd  *exec.Cmd
	out  *SyncBuffer
	once sync.Once
	done chan struct{} // closed when the process has exited
}

// StartRedis starts a redis-server for t (DEBUG allowed from loopback, for
// DEBUG SLEEP) and kills it when t ends. Without redis-server on the PATH
// the test is skipped, or fails when CI=true: CI installs it.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redis-server not found (CI installs it: apt-get install redis-server): %v", err)
		}
		t.Skip("redis-server not found; install it (apt-get install redis-server) to run this test")
	}
	// A port freed for it may be taken again before redis binds it: try
	// a few.
	var last error
	for range 3 {
		r, err := startRedis(t, bin)
		if err == nil {
			return r
		}
		last = err
	}
	t.Fatalf("redis-server: %v", last)
	return nil
}

func startRedis(t testing.TB, bin string) (*Redis, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	r := &Redis{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), out: &SyncBuffer{}, done: make(chan struct{})}
	r.cmd = exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", t.TempDir(),
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--enable-debug-command", "local", "--loglevel", "warning")
	r.cmd.Stdout, r.cmd.Stderr = r.out, r.out
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { r.cmd.Wait(); close(r.done) }()
	t.Cleanup(r.kill)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := r.ping(); err == nil {
			return r, nil
		}
		select {
		case <-r.done:
			return nil, fmt.Errorf("exited at start: %s", r.out.String())
		default:
		}
		if time.Now().After(deadline) {
			r.kill()
			return nil, fmt.Errorf("not answering PING on %s after 10s: %s", r.Addr, r.out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// URL is its redis:// URL.
func (r *Redis) URL() string { return "redis://" + r.Addr }

// Kill kills it (SIGKILL) and waits until it has exited: from then on a
// connection to Addr is refused.
func (r *Redis) Kill(t testing.TB) {
	t.Helper()
	r.kill()
	select {
	case <-r.done:
	case <-time.After(10 * time.Second):
		t.Fatal("redis-server did not exit after SIGKILL")
	}
}

func (r *Redis) kill() {
	r.once.Do(func() {
		r.cmd.Process.Kill()
		<-r.done
	})
}

// Do sends one command (as a RESP array of bulk strings) on a new
// connection and returns the first line of the answer (+OK, :1, $5, -ERR …).
func (r *Redis) Do(t testing.TB, args ...string) string {
	t.Helper()
	line, err := r.do(args...)
	if err != nil {
		t.Fatalf("redis %s: %v", args[0], err)
	}
	return line
}

func (r *Redis) ping() error {
	line, err := r.do("PING")
	if err == nil && line != "+PONG" {
		err = fmt.Errorf("PING: %q", line)
	}
	return err
}

func (r *Redis) do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", r.Addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}
