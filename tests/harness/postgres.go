package harness

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the driver the lakehouse uses
)

// ErrNoPostgres: no PostgreSQL server binaries on this machine.
var ErrNoPostgres = errors.New("harness: no PostgreSQL binaries (apt-get install postgresql)")

// PostgresServer is a PostgreSQL cluster of the harness's own: initialised
// in a temporary folder, listening on a loopback port, with trust
// authentication for its superuser. Stop removes it.
type PostgresServer struct {
	bin, dir string
	port     int
	cred     *syscall.Credential // the postgres user's, when running as root
	next     atomic.Int64
}

// StartPostgres initialises and starts a cluster with the machine's
// PostgreSQL (Debian's /usr/lib/postgresql/<version>/bin). PostgreSQL
// refuses to run as root, so as root the cluster runs as the postgres
// user. Durability is off (fsync, synchronous commit): the data is
// thrown away.
func StartPostgres() (*PostgresServer, error) {
	bin, err := postgresBin()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "costlake-pg-")
	if err != nil {
		return nil, err
	}
	p := &PostgresServer{bin: bin, dir: dir}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("harness: running as root needs the postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		p.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if p.port, err = freePort(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if out, err := p.run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("harness: initdb: %w: %s", err, out)
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400",
		p.port, dir)
	if out, err := p.run("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "server.log"), "-w", "-t", "60", "start"); err != nil {
		log := tailFile(filepath.Join(dir, "server.log"), 20)
		os.RemoveAll(dir)
		return nil, fmt.Errorf("harness: start PostgreSQL: %w: %s %s", err, out, log)
	}
	return p, nil
}

// NewDatabase creates an empty database for one test and returns its URL.
func (p *PostgresServer) NewDatabase(t testing.TB) string {
	t.Helper()
	return p.CreateDatabase(t, fmt.Sprintf("test_%d", p.next.Add(1)))
}

// Stop stops the cluster at once and removes its folder.
func (p *PostgresServer) Stop() {
	_, _ = p.run("pg_ctl", "-D", filepath.Join(p.dir, "data"), "-m", "immediate", "-w", "stop")
	os.RemoveAll(p.dir)
}

func (p *PostgresServer) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", p.port, db)
}

func (p *PostgresServer) run(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(filepath.Join(p.bin, name), args...)
	cmd.Dir = p.dir
	if p.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	}
	return cmd.CombinedOutput()
}

// postgresBin is the newest /usr/lib/postgresql/<version>/bin with initdb.
func postgresBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", ErrNoPostgres
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// Addr is the cluster's host:port on the loopback.
func (p *PostgresServer) Addr() string { return fmt.Sprintf("127.0.0.1:%d", p.port) }

// User is the cluster's superuser, which trust authentication lets in
// without a password.
func (p *PostgresServer) User() string { return "postgres" }

// CreateDatabase creates an empty database named name and returns its URL.
func (p *PostgresServer) CreateDatabase(t testing.TB, name string) string {
	t.Helper()
	db, err := sql.Open("pgx", p.url("postgres"))
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("harness: create database %s: %v", name, err)
	}
	return p.url(name)
}
