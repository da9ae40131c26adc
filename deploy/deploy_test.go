// Package deploy holds no code: its tests check the deployment files
// (Dockerfile, docker-compose.yml, the Kustomize base) against the flags
// the production binary accepts, so a renamed setting cannot leave a
// deployment that no longer starts.
package deploy

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"
)

// costlake is the production binary (-tags nodev), built once in TestMain.
var costlake string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "costlake-deploy-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	costlake = filepath.Join(dir, "costlake")
	build := exec.Command("go", "build", "-tags", "nodev", "-o", costlake, "../cmd/costlake")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build -tags nodev ./cmd/costlake: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// helpEnv matches the environment variables a flag's help ends with:
// [COSTLAKE_CATALOG], [COSTLAKE_S3_REGION, AWS_REGION], [COSTLAKE_TEMPORAL_TLS=true].
var helpEnv = regexp.MustCompile(`\[([A-Z][A-Z0-9_]*(?:=[a-z]+)?(?:, [A-Z][A-Z0-9_]*)*)\]`)

// acceptedEnv returns the environment variables `costlake <command> -h`
// names: the settings that command reads.
func acceptedEnv(t *testing.T, command string) map[string]bool {
	t.Helper()
	out, err := exec.Command(costlake, command, "-h").CombinedOutput()
	if err != nil {
		t.Fatalf("costlake %s -h: %v\n%s", command, err, out)
	}
	names := map[string]bool{}
	for _, m := range helpEnv.FindAllStringSubmatch(string(out), -1) {
		for _, name := range strings.Split(m[1], ", ") {
			name, _, _ = strings.Cut(name, "=")
			names[name] = true
		}
	}
	// The parse must find what every command has, or a changed help
	// format would let anything through.
	if !names["COSTLAKE_TEMPORAL_ADDRESS"] || !names["COSTLAKE_TEMPORAL_TLS"] {
		t.Fatalf("costlake %s -h: found %v, not COSTLAKE_TEMPORAL_ADDRESS and COSTLAKE_TEMPORAL_TLS: has the help's [ENV] format changed?", command, sortedKeys(names))
	}
	return names
}

// envOnly are settings read from the environment alone, never from a
// flag, so no help names them: the warehouse's own keys stay off command
// lines. Each is checked to be read where named.
var envOnly = map[string]string{
	"COSTLAKE_WAREHOUSE_AWS_ACCESS_KEY_ID":     "../internal/config/config.go",
	"COSTLAKE_WAREHOUSE_AWS_SECRET_ACCESS_KEY": "../internal/config/config.go",
}

// awsEnv are the AWS SDK's own variables, which the binaries read
// through the SDK (costlake's identity for customers' buckets).
var awsEnv = map[string]bool{"AWS_ACCESS_KEY_ID": true, "AWS_SECRET_ACCESS_KEY": true, "AWS_SESSION_TOKEN": true, "AWS_REGION": true}

// checkEnvAccepted fails for each variable of env that the command
// does not read.
func checkEnvAccepted(t *testing.T, where, command string, env []string) {
	t.Helper()
	accepted := acceptedEnv(t, command)
	for _, name := range env {
		switch {
		case accepted[name]:
		case envOnly[name] != "":
			src, err := os.ReadFile(envOnly[name])
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(src), `"`+name+`"`) {
				t.Errorf("%s sets %s, which %s no longer reads", where, name, envOnly[name])
			}
		case awsEnv[name] && command == "worker":
		default:
			t.Errorf("%s sets %s, which `costlake %s` does not accept (its flags read %v)", where, name, command, sortedKeys(accepted))
		}
	}
}

// exampleEnv is deploy/env.example with a value for every required
// setting it leaves empty, as the README's recipe makes deploy/.env.
func exampleEnv(t *testing.T) map[string]string {
	t.Helper()
	env, err := dotenv.Read("env.example")
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range env {
		if v == "" && isSecret(name) {
			env[name] = "test-secret-" + strings.ToLower(name)
		}
	}
	env["COSTLAKE_AWS_PRINCIPAL_ARN"] = "arn:aws:iam::123456789012:role/costlake-worker"
	return env
}

// isSecret says whether an env.example setting is a secret that the
// README's recipe fills with a random value.
func isSecret(name string) bool {
	return strings.HasSuffix(name, "_PASSWORD") || strings.HasSuffix(name, "_SECRET_KEY")
}

func loadCompose(env map[string]string, profiles ...string) (*types.Project, error) {
	file, err := filepath.Abs("docker-compose.yml")
	if err != nil {
		return nil, err
	}
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  filepath.Dir(file),
		ConfigFiles: []types.ConfigFile{{Filename: file}},
		Environment: env,
	}, func(o *loader.Options) {
		o.SetProjectName("costlake-test", true)
		o.ResolvePaths = true
		o.Profiles = profiles
	})
}

func mustLoadCompose(t *testing.T, env map[string]string, profiles ...string) *types.Project {
	t.Helper()
	p, err := loadCompose(env, profiles...)
	if err != nil {
		t.Fatalf("load docker-compose.yml with env.example (profiles %v): %v", profiles, err)
	}
	return p
}

func environment(s types.ServiceConfig) map[string]string {
	env := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			env[k] = *v
		}
	}
	return env
}

// The compose file has the services a deployment needs, and the opt-in
// ones only under their profiles.
func TestComposeServices(t *testing.T) {
	env := exampleEnv(t)
	for _, tc := range []struct {
		profiles []string
		want     []string
	}{
		{nil, []string{"gateway", "minio", "minio-setup", "postgres", "temporal", "worker"}},
		{[]string{"ui", "tools"}, []string{"costlake-keys", "gateway", "minio", "minio-setup", "postgres", "temporal", "temporal-ui", "worker"}},
	} {
		p := mustLoadCompose(t, env, tc.profiles...)
		if got := p.ServiceNames(); !slices.Equal(sorted(got), tc.want) {
			t.Errorf("profiles %v: services %v, want %v", tc.profiles, sorted(got), tc.want)
		}
	}
}

// Only the gateway is published, on the host's loopback; the opt-in UI
// too, and nothing else at all.
func TestComposePorts(t *testing.T) {
	env := exampleEnv(t)
	published := func(p *types.Project) map[string][]types.ServicePortConfig {
		out := map[string][]types.ServicePortConfig{}
		for name, s := range p.Services {
			if len(s.Ports) > 0 {
				out[name] = s.Ports
			}
		}
		return out
	}
	def := published(mustLoadCompose(t, env))
	if len(def) != 1 || len(def["gateway"]) != 1 {
		t.Fatalf("published ports by default: %v, want the gateway's alone", def)
	}
	if port := def["gateway"][0]; port.Target != 8080 || port.Published != "8080" || port.HostIP != "127.0.0.1" {
		t.Errorf("gateway publishes %+v, want 127.0.0.1:8080 to its 8080", port)
	}
	all := published(mustLoadCompose(t, env, "ui", "tools"))
	delete(all, "gateway")
	for name, ports := range all {
		if name != "temporal-ui" {
			t.Errorf("%s publishes %+v: only the gateway and the opt-in UI may", name, ports)
			continue
		}
		for _, port := range ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("temporal-ui publishes %+v beyond the loopback", port)
			}
		}
	}
	// Defence in depth: the data services are on a network with no way in
	// or out, where a published port would not work either.
	p := mustLoadCompose(t, env)
	for _, name := range []string{"postgres", "temporal", "minio", "minio-setup"} {
		for net := range p.Services[name].Networks {
			if !p.Networks[net].Internal {
				t.Errorf("%s is on network %s, which is not internal", name, net)
			}
		}
	}
}

// Every COSTLAKE_* variable the worker and gateway get is one of their
// flags' (or a named environment-only setting), and the settings each
// needs to start are there, pointing at services of the file.
func TestComposeCostlakeSettings(t *testing.T) {
	env := exampleEnv(t)
	p := mustLoadCompose(t, env, "ui", "tools")
	for _, command := range []string{"worker", "gateway"} {
		s := p.Services[command]
		if !slices.Equal(s.Command, []string{command}) {
			t.Errorf("service %s runs %v, want [%s]", command, s.Command, command)
		}
		checkEnvAccepted(t, "service "+command, command, sortedKeys(environment(s)))
	}

	worker, gateway := environment(p.Services["worker"]), environment(p.Services["gateway"])
	for _, svc := range []map[string]string{worker, gateway} {
		if got := svc["COSTLAKE_TEMPORAL_ADDRESS"]; got != "temporal:7233" {
			t.Errorf("COSTLAKE_TEMPORAL_ADDRESS %q, want temporal:7233", got)
		}
	}
	initScript, err := os.ReadFile("compose/postgres-init.sh")
	if err != nil {
		t.Fatal(err)
	}
	checkCatalog := func(service, dsn, user, password string) {
		u, err := url.Parse(dsn)
		if err != nil || u.Scheme != "postgres" || u.Hostname() != "postgres" || u.Path != "/costlake" {
			t.Errorf("%s: COSTLAKE_CATALOG %q, want postgres://…@postgres:5432/costlake", service, dsn)
			return
		}
		if u.User.Username() != user {
			t.Errorf("%s connects to the catalog as %q, want %q", service, u.User.Username(), user)
		}
		if pw, _ := u.User.Password(); pw != password {
			t.Errorf("%s: the catalog password is not the env file's", service)
		}
		if !strings.Contains(string(initScript), "CREATE ROLE "+user+" LOGIN") {
			t.Errorf("%s connects as %s, which postgres-init.sh does not create", service, user)
		}
	}
	checkCatalog("worker", worker["COSTLAKE_CATALOG"], "costlake", env["CATALOG_DB_PASSWORD"])
	checkCatalog("gateway", gateway["COSTLAKE_CATALOG"], "costlake_reader", env["CATALOG_READER_PASSWORD"])

	// The warehouse: a bucket minio-setup creates, on MinIO, with
	// costlake's own MinIO user.
	wh, err := url.Parse(worker["COSTLAKE_WAREHOUSE"])
	if err != nil || wh.Scheme != "s3" || wh.Host == "" {
		t.Fatalf("worker COSTLAKE_WAREHOUSE %q, want s3://bucket/prefix", worker["COSTLAKE_WAREHOUSE"])
	}
	setup := strings.Join(p.Services["minio-setup"].Command, " ")
	if !strings.Contains(setup, "mc mb --ignore-existing local/"+wh.Host+"\n") {
		t.Errorf("minio-setup does not create the warehouse bucket %q: %s", wh.Host, setup)
	}
	policy, err := os.ReadFile("compose/minio-warehouse-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(policy), `"arn:aws:s3:::`+wh.Host+`/*"`) {
		t.Errorf("the MinIO policy does not grant the warehouse bucket %q", wh.Host)
	}
	if got := worker["COSTLAKE_WAREHOUSE_S3_ENDPOINT"]; got != "http://minio:9000" {
		t.Errorf("worker COSTLAKE_WAREHOUSE_S3_ENDPOINT %q, want http://minio:9000", got)
	}
	if worker["COSTLAKE_S3_ENDPOINT"] != "" {
		t.Errorf("worker COSTLAKE_S3_ENDPOINT %q: customers' buckets are on AWS; MinIO is the warehouse's alone", worker["COSTLAKE_S3_ENDPOINT"])
	}
	if worker["COSTLAKE_WAREHOUSE_AWS_ACCESS_KEY_ID"] != env["WAREHOUSE_ACCESS_KEY"] || worker["COSTLAKE_WAREHOUSE_AWS_SECRET_ACCESS_KEY"] != env["WAREHOUSE_SECRET_KEY"] {
		t.Error("the worker's warehouse keys are not the MinIO user minio-setup creates")
	}

	// Onboarding: the principal and where templates go.
	if !strings.HasPrefix(worker["COSTLAKE_AWS_PRINCIPAL_ARN"], "arn:aws:iam::") {
		t.Errorf("worker COSTLAKE_AWS_PRINCIPAL_ARN %q, want the env file's ARN", worker["COSTLAKE_AWS_PRINCIPAL_ARN"])
	}
	templates := worker["COSTLAKE_TEMPLATES"]
	if templates == "" || (!strings.HasPrefix(templates, "s3://") && !mountedAt(p.Services["worker"], templates, false)) {
		t.Errorf("worker COSTLAKE_TEMPLATES %q is neither s3:// nor a writable volume", templates)
	}

	// The gateway's keys: a volume it reads and costlake-keys writes.
	keys := gateway["COSTLAKE_API_KEYS_FILE"]
	if !mountedAt(p.Services["gateway"], filepath.Dir(keys), true) {
		t.Errorf("gateway COSTLAKE_API_KEYS_FILE %q is not on a volume", keys)
	}
	tool := p.Services["costlake-keys"]
	if !mountedAt(tool, filepath.Dir(keys), false) || !slices.Contains(tool.Entrypoint, keys) || !slices.Equal(tool.Entrypoint[:2], []string{"/costlake", "apikey"}) {
		t.Errorf("costlake-keys (%v) does not write the gateway's keys file %s", tool.Entrypoint, keys)
	}
	if volumeOf(tool, filepath.Dir(keys)) != volumeOf(p.Services["gateway"], filepath.Dir(keys)) {
		t.Error("costlake-keys and the gateway mount different volumes for the keys")
	}

	// Bind mounts exist where the file says.
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind {
				if _, err := os.Stat(v.Source); err != nil {
					t.Errorf("%s mounts %s: %v", name, v.Source, err)
				}
			}
		}
	}
}

// volumeOf returns the named volume mounted at target, or "".
func volumeOf(s types.ServiceConfig, target string) string {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Target == target {
			return v.Source
		}
	}
	return ""
}

// mountedAt says whether a named volume is mounted at target (or above
// it), read-only or not as asked.
func mountedAt(s types.ServiceConfig, target string, readOnly bool) bool {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && (target == v.Target || strings.HasPrefix(target, v.Target+"/")) && v.ReadOnly == readOnly {
			return true
		}
	}
	return false
}

// Services start in order: each waits for what it needs to be healthy
// (or, for the one-shot setup, done), and what is waited on has a check.
func TestComposeDependencies(t *testing.T) {
	p := mustLoadCompose(t, exampleEnv(t), "ui", "tools")
	want := map[string]map[string]string{
		"temporal":    {"postgres": types.ServiceConditionHealthy},
		"temporal-ui": {"temporal": types.ServiceConditionHealthy},
		"minio-setup": {"minio": types.ServiceConditionHealthy},
		"worker": {
			"postgres":    types.ServiceConditionHealthy,
			"temporal":    types.ServiceConditionHealthy,
			"minio-setup": types.ServiceConditionCompletedSuccessfully,
		},
		"gateway": {"postgres": types.ServiceConditionHealthy, "temporal": types.ServiceConditionHealthy},
	}
	for name, s := range p.Services {
		got := map[string]string{}
		for dep, d := range s.DependsOn {
			got[dep] = d.Condition
			if d.Condition == types.ServiceConditionHealthy {
				if hc := p.Services[dep].HealthCheck; hc == nil || hc.Disable || len(hc.Test) == 0 {
					t.Errorf("%s waits for %s to be healthy, which has no health check", name, dep)
				}
			}
		}
		if w := want[name]; fmt.Sprint(got) != fmt.Sprint(w) && (len(got) > 0 || len(w) > 0) {
			t.Errorf("%s depends on %v, want %v", name, got, w)
		}
	}
	// The worker's health is on its metrics port, not the image's 8080.
	hc := p.Services["worker"].HealthCheck
	if hc == nil || !slices.Equal(hc.Test, []string{"CMD", "/costlake", "health", "--url", "http://127.0.0.1:9090/healthz"}) {
		t.Errorf("worker health check %+v, want /costlake health on :9090/healthz", hc)
	}
	// Docker's stop must leave the worker its --stop-timeout (30s) and more.
	if g := p.Services["worker"].StopGracePeriod; g == nil || time.Duration(*g) <= 30*time.Second {
		t.Errorf("worker stop_grace_period %v, want more than --stop-timeout's 30s", g)
	}
}

// Images are pinned to a release, never `latest` or no tag; costlake's
// own are built from this repository.
func TestComposeImagesPinned(t *testing.T) {
	p := mustLoadCompose(t, exampleEnv(t), "ui", "tools")
	for name, s := range p.Services {
		if s.Build != nil {
			if s.Build.Dockerfile != "deploy/Dockerfile" {
				t.Errorf("%s builds %s, want deploy/Dockerfile", name, s.Build.Dockerfile)
			}
			continue
		}
		repo, tag, ok := strings.Cut(s.Image[strings.LastIndex(s.Image, "/")+1:], ":")
		if !ok || tag == "" || tag == "latest" || repo == "" {
			t.Errorf("%s runs image %q: pin a release tag", name, s.Image)
		}
	}
}

// Secrets are never in the file: every one is a required ${NAME:?…}
// reference to the env file, and env.example leaves each empty, so no
// shared default password exists.
func TestComposeSecretsFromEnvFile(t *testing.T) {
	raw, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	example, err := dotenv.Read("env.example")
	if err != nil {
		t.Fatal(err)
	}
	var secrets []string
	for name, v := range example {
		if isSecret(name) {
			secrets = append(secrets, name)
			if v != "" {
				t.Errorf("env.example sets %s: leave secrets empty for the README's recipe to fill", name)
			}
		}
	}
	sort.Strings(secrets)
	if len(secrets) < 6 {
		t.Fatalf("env.example has secrets %v: want PostgreSQL's four and MinIO's two", secrets)
	}
	for _, name := range secrets {
		refs := regexp.MustCompile(`\$\{`+name+`(.?.?)`).FindAllStringSubmatch(string(raw), -1)
		if len(refs) == 0 {
			t.Errorf("env.example's %s is not used by docker-compose.yml", name)
		}
		for _, r := range refs {
			if r[1] != ":?" {
				t.Errorf("docker-compose.yml reads ${%s%s…}: a secret must be required (${%s:?message})", name, r[1], name)
			}
		}
	}

	// No literal value of a secret-looking variable in any service.
	var doc struct {
		Services map[string]struct {
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	secretName := regexp.MustCompile(`PASSWORD|_PWD$|SECRET|ACCESS_KEY`)
	for svc, s := range doc.Services {
		for name, v := range s.Environment {
			if secretName.MatchString(name) && !strings.HasPrefix(v, "${") {
				t.Errorf("%s: %s is the literal %q, want a ${…} reference to the env file", svc, name, v)
			}
			if u, err := url.Parse(v); err == nil && u.User != nil {
				if pw, ok := u.User.Password(); ok && !strings.HasPrefix(pw, "${") {
					t.Errorf("%s: %s holds a literal password", svc, name)
				}
			}
		}
	}
}

// Without the env file, or with one of its required settings empty,
// compose stops before anything starts and names the setting.
func TestComposeNeedsEnvFile(t *testing.T) {
	if _, err := loadCompose(map[string]string{}); err == nil || !strings.Contains(err.Error(), "deploy/.env") {
		t.Errorf("loading without an env file: %v, want an error naming a setting of deploy/.env", err)
	}
	env := exampleEnv(t)
	var required []string
	for name := range env {
		if isSecret(name) {
			required = append(required, name)
		}
	}
	required = append(required, "COSTLAKE_AWS_PRINCIPAL_ARN")
	sort.Strings(required)
	for _, name := range required {
		without := map[string]string{}
		for k, v := range env {
			if k != name {
				without[k] = v
			}
		}
		_, err := loadCompose(without)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("loading without %s: %v, want an error naming it", name, err)
		}
	}
}

// The image is the static production build, runs as non-root and checks
// its health with the binary's own command (there is no shell).
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	for _, want := range []string{
		"CGO_ENABLED=0 go build -tags nodev -trimpath",
		"FROM gcr.io/distroless/static-debian12:nonroot",
		"USER nonroot:nonroot",
		`CMD ["/costlake", "health", "--url", "http://127.0.0.1:8080/healthz"`,
		`ENTRYPOINT ["/costlake"]`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	// The health check's command is in the production build.
	if out, err := exec.Command(costlake, "health", "-h").CombinedOutput(); err != nil || !strings.Contains(string(out), "-url") {
		t.Errorf("costlake health -h: %v\n%s", err, out)
	}
	ignore, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Split(string(ignore), "\n"), "deploy/.env") {
		t.Error(".dockerignore does not keep deploy/.env out of the build context")
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}
