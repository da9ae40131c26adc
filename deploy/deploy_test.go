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
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	sigsyaml "sigs.k8s.io/yaml"
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

// kube is the Kustomize base, rendered and decoded strictly.
type kube struct {
	deployments     map[string]*appsv1.Deployment
	hpas            []*autoscalingv2.HorizontalPodAutoscaler
	services        []*corev1.Service
	configMaps      map[string]*corev1.ConfigMap
	networkPolicies []*networkingv1.NetworkPolicy
}

// renderKube builds deploy/kubernetes with the Kustomize API and decodes
// each resource into its Kubernetes type, failing on a kind the base
// should not have and on any field the type does not know.
func renderKube(t *testing.T) kube {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), "kubernetes")
	if err != nil {
		t.Fatalf("kustomize build deploy/kubernetes: %v", err)
	}
	k := kube{deployments: map[string]*appsv1.Deployment{}, configMaps: map[string]*corev1.ConfigMap{}}
	for _, r := range m.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		gvk := r.GetApiVersion() + " " + r.GetKind()
		var obj any
		switch gvk {
		case "apps/v1 Deployment":
			d := &appsv1.Deployment{}
			k.deployments[r.GetName()], obj = d, d
		case "autoscaling/v2 HorizontalPodAutoscaler":
			h := &autoscalingv2.HorizontalPodAutoscaler{}
			k.hpas, obj = append(k.hpas, h), h
		case "v1 Service":
			s := &corev1.Service{}
			k.services, obj = append(k.services, s), s
		case "v1 ConfigMap":
			c := &corev1.ConfigMap{}
			k.configMaps[r.GetName()], obj = c, c
		case "v1 ServiceAccount":
			obj = &corev1.ServiceAccount{}
		case "networking.k8s.io/v1 NetworkPolicy":
			n := &networkingv1.NetworkPolicy{}
			k.networkPolicies, obj = append(k.networkPolicies, n), n
		case "batch/v1 CronJob":
			t.Errorf("the base has CronJob %s: Temporal schedules the work", r.GetName())
			continue
		case "v1 Secret":
			t.Errorf("the base has Secret %s: secrets are the operator's, never committed", r.GetName())
			continue
		default:
			t.Errorf("the base has %s %s, which this test does not know", gvk, r.GetName())
			continue
		}
		if err := sigsyaml.UnmarshalStrict(y, obj); err != nil {
			t.Errorf("%s %s does not decode strictly: %v", gvk, r.GetName(), err)
		}
	}
	return k
}

// Every container of the base has probes, limits and a non-root,
// read-only, unprivileged security context; the worker is given more
// than its stop timeout to stop.
func TestKubernetesContainers(t *testing.T) {
	k := renderKube(t)
	if len(k.deployments) != 2 || k.deployments["costlake-worker"] == nil || k.deployments["costlake-gateway"] == nil {
		t.Fatalf("deployments %v, want costlake-worker and costlake-gateway", sortedKeys(k.deployments))
	}
	wantProbes := map[string]struct {
		port           int32
		ready, healthy string
	}{
		"worker":  {9090, "/readyz", "/healthz"},
		"gateway": {8080, "/readyz", "/healthz"},
	}
	for name, d := range k.deployments {
		pod := d.Spec.Template.Spec
		if !labels.SelectorFromSet(d.Spec.Selector.MatchLabels).Matches(labels.Set(d.Spec.Template.Labels)) {
			t.Errorf("%s: its selector does not match its pods", name)
		}
		if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
			t.Errorf("%s mounts a Kubernetes API token it does not use", name)
		}
		for _, c := range pod.Containers {
			where := name + "/" + c.Name
			command := ""
			if len(c.Args) > 0 {
				command = c.Args[0]
			}
			want, ok := wantProbes[command]
			if !ok {
				t.Errorf("%s runs %v, want worker or gateway", where, c.Args)
				continue
			}
			for probe, p := range map[string]struct {
				probe *corev1.Probe
				path  string
			}{"readiness": {c.ReadinessProbe, want.ready}, "liveness": {c.LivenessProbe, want.healthy}} {
				if p.probe == nil || p.probe.HTTPGet == nil {
					t.Errorf("%s has no HTTP %s probe", where, probe)
					continue
				}
				if port := containerPort(c, p.probe.HTTPGet.Port); p.probe.HTTPGet.Path != p.path || port != want.port {
					t.Errorf("%s: %s probe GET %s on %d, want %s on %d", where, probe, p.probe.HTTPGet.Path, port, p.path, want.port)
				}
			}
			if c.Resources.Limits.Memory().IsZero() || c.Resources.Limits.Cpu().IsZero() || c.Resources.Requests.Cpu().IsZero() {
				t.Errorf("%s: resources %v, want CPU and memory limits and a CPU request (the autoscaler's base)", where, c.Resources)
			}
			sc, psc := c.SecurityContext, pod.SecurityContext
			nonRoot := (sc != nil && sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (psc != nil && psc.RunAsNonRoot != nil && *psc.RunAsNonRoot)
			if !nonRoot || sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
				t.Errorf("%s: want runAsNonRoot, readOnlyRootFilesystem, no privilege escalation and every capability dropped", where)
			}
			if img := c.Image; !strings.Contains(img[strings.LastIndex(img, "/")+1:], ":") || strings.HasSuffix(img, ":latest") {
				t.Errorf("%s runs image %q: pin a release tag", where, img)
			}
			if command == "worker" {
				if c.Resources.Limits.Memory().Cmp(resource.MustParse("512Mi")) != 0 {
					t.Errorf("%s: memory limit %s, want 512Mi", where, c.Resources.Limits.Memory())
				}
				stop := 30 * time.Second
				if v := configValue(k, c, "COSTLAKE_WORKER_STOP_TIMEOUT"); v != "" {
					var err error
					if stop, err = time.ParseDuration(v); err != nil {
						t.Fatalf("COSTLAKE_WORKER_STOP_TIMEOUT %q: %v", v, err)
					}
				}
				grace := 30 * time.Second // Kubernetes' default
				if g := pod.TerminationGracePeriodSeconds; g != nil {
					grace = time.Duration(*g) * time.Second
				}
				if grace <= stop {
					t.Errorf("%s: terminationGracePeriodSeconds %s, want more than the worker's stop timeout %s", where, grace, stop)
				}
			}
		}
	}
}

// containerPort resolves a probe's port, by number or by name.
func containerPort(c corev1.Container, p intstr.IntOrString) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	return 0
}

// configValue is a setting a container gets from its ConfigMaps.
func configValue(k kube, c corev1.Container, name string) string {
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef != nil {
			if cm := k.configMaps[from.ConfigMapRef.Name]; cm != nil && cm.Data[name] != "" {
				return cm.Data[name]
			}
		}
	}
	return ""
}

// Every setting a container gets, from its ConfigMaps or its own env, is
// one its command accepts; secrets come from Secrets the operator makes,
// and the worker has what it needs to start.
func TestKubernetesSettings(t *testing.T) {
	k := renderKube(t)
	for name, d := range k.deployments {
		for _, c := range d.Spec.Template.Spec.Containers {
			where := name + "/" + c.Name
			var env []string
			got := map[string]bool{}
			for _, from := range c.EnvFrom {
				switch {
				case from.ConfigMapRef != nil:
					cm := k.configMaps[from.ConfigMapRef.Name]
					if cm == nil {
						t.Errorf("%s reads ConfigMap %s, which the base does not make", where, from.ConfigMapRef.Name)
						continue
					}
					env = append(env, sortedKeys(cm.Data)...)
				case from.SecretRef != nil:
					if from.SecretRef.Optional == nil || !*from.SecretRef.Optional || c.Args[0] != "worker" {
						t.Errorf("%s takes every key of Secret %s: only the worker's optional AWS keys may", where, from.SecretRef.Name)
					}
				}
			}
			for _, e := range c.Env {
				env = append(env, e.Name)
				if e.Value != "" && strings.Contains(e.Name, "SECRET") {
					t.Errorf("%s: %s is a literal; want a secretKeyRef", where, e.Name)
				}
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && strings.HasPrefix(e.Name, "COSTLAKE_CATALOG") {
					got["catalog from a Secret"] = true
				}
			}
			checkEnvAccepted(t, where, c.Args[0], env)
			for _, n := range env {
				got[n] = true
			}
			need := []string{"COSTLAKE_TEMPORAL_ADDRESS", "COSTLAKE_CATALOG", "catalog from a Secret"}
			if c.Args[0] == "worker" {
				need = append(need, "COSTLAKE_WAREHOUSE", "COSTLAKE_AWS_PRINCIPAL_ARN", "COSTLAKE_TEMPLATES")
			} else {
				need = append(need, "COSTLAKE_API_KEYS_FILE")
			}
			for _, n := range need {
				if !got[n] {
					t.Errorf("%s lacks %s", where, n)
				}
			}
		}
	}
	// The gateway's keys file is a mounted Secret.
	gw := k.deployments["costlake-gateway"].Spec.Template.Spec
	keys := configValue(k, gw.Containers[0], "COSTLAKE_API_KEYS_FILE")
	mounted := false
	for _, m := range gw.Containers[0].VolumeMounts {
		if m.MountPath == filepath.Dir(keys) {
			for _, v := range gw.Volumes {
				if v.Name == m.Name && v.Secret != nil && slices.ContainsFunc(v.Secret.Items, func(i corev1.KeyToPath) bool { return i.Path == filepath.Base(keys) }) {
					mounted = true
				}
			}
		}
	}
	if !mounted {
		t.Errorf("the gateway's COSTLAKE_API_KEYS_FILE %q is not a key of a mounted Secret", keys)
	}
}

// The autoscaler scales the worker Deployment; the Service reaches the
// gateway's pods on their HTTP port.
func TestKubernetesScalingAndService(t *testing.T) {
	k := renderKube(t)
	if len(k.hpas) != 1 {
		t.Fatalf("%d autoscalers, want one for the worker", len(k.hpas))
	}
	ref := k.hpas[0].Spec.ScaleTargetRef
	if ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" || ref.Name != "costlake-worker" {
		t.Errorf("the autoscaler scales %+v, want the costlake-worker Deployment", ref)
	}
	if min := k.hpas[0].Spec.MinReplicas; min == nil || *min < 1 || k.hpas[0].Spec.MaxReplicas < *min {
		t.Errorf("autoscaler replicas %v to %d", min, k.hpas[0].Spec.MaxReplicas)
	}
	if len(k.services) != 1 {
		t.Fatalf("%d Services, want the gateway's", len(k.services))
	}
	svc := k.services[0]
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	gw := k.deployments["costlake-gateway"].Spec.Template
	if len(svc.Spec.Selector) == 0 || !sel.Matches(labels.Set(gw.Labels)) || sel.Matches(labels.Set(k.deployments["costlake-worker"].Spec.Template.Labels)) {
		t.Errorf("Service %s selects %v: want the gateway's pods and not the worker's", svc.Name, svc.Spec.Selector)
	}
	for _, p := range svc.Spec.Ports {
		if containerPort(gw.Spec.Containers[0], p.TargetPort) != 8080 {
			t.Errorf("Service port %s goes to %s, not the gateway's 8080", p.Name, p.TargetPort.String())
		}
	}
}

// Temporal's pods take connections only from one another and, on 7233,
// from costlake's worker and gateway; the gateway's API is the only port
// open to anyone.
func TestKubernetesNetworkPolicies(t *testing.T) {
	k := renderKube(t)
	temporalPod := labels.Set{"app.kubernetes.io/name": "temporal", "app.kubernetes.io/component": "frontend"}
	outsider := labels.Set{"app": "something-else"}
	worker := labels.Set(k.deployments["costlake-worker"].Spec.Template.Labels)
	gateway := labels.Set(k.deployments["costlake-gateway"].Spec.Template.Labels)

	selects := func(s metav1.LabelSelector, pod labels.Set) bool {
		sel, err := metav1.LabelSelectorAsSelector(&s)
		if err != nil {
			t.Fatal(err)
		}
		return sel.Matches(pod)
	}
	// allowed says whether the policies selecting pod let from reach it on
	// port (no policy selecting it: anything may).
	allowed := func(pod, from labels.Set, port int32) bool {
		covered := false
		for _, np := range k.networkPolicies {
			if !selects(np.Spec.PodSelector, pod) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
				continue
			}
			covered = true
			for _, rule := range np.Spec.Ingress {
				portOK := len(rule.Ports) == 0
				for _, p := range rule.Ports {
					portOK = portOK || (p.Port != nil && p.Port.IntVal == port)
				}
				peerOK := len(rule.From) == 0
				for _, peer := range rule.From {
					if peer.IPBlock != nil {
						t.Errorf("policy %s admits an IP block", np.Name)
					}
					// Same namespace only when there is no namespaceSelector.
					if peer.PodSelector != nil && peer.NamespaceSelector == nil && selects(*peer.PodSelector, from) {
						peerOK = true
					}
				}
				if portOK && peerOK {
					return true
				}
			}
		}
		return !covered
	}
	for _, c := range []struct {
		what     string
		pod      labels.Set
		from     labels.Set
		port     int32
		expected bool
	}{
		{"the worker to Temporal's frontend", temporalPod, worker, 7233, true},
		{"the gateway to Temporal's frontend", temporalPod, gateway, 7233, true},
		{"Temporal's services to one another", temporalPod, labels.Set{"app.kubernetes.io/name": "temporal", "app.kubernetes.io/component": "history"}, 6933, true},
		{"another pod to Temporal's frontend", temporalPod, outsider, 7233, false},
		{"the worker to another Temporal port", temporalPod, worker, 7234, false},
		{"anyone to the gateway's API", gateway, outsider, 8080, true},
		{"anyone to the worker's metrics from outside the cluster", worker, outsider, 9090, false},
		{"anyone to the gateway on another port", gateway, outsider, 7233, false},
	} {
		if got := allowed(c.pod, c.from, c.port); got != c.expected {
			t.Errorf("%s on %d: allowed %v, want %v", c.what, c.port, got, c.expected)
		}
	}
}

// The worker's health checks (compose and Kubernetes) use port 9090,
// the default of --metrics-address; once the binaries have that flag,
// its default must still be :9090.
func TestMetricsPortIsTheFlagsDefault(t *testing.T) {
	flagLine := regexp.MustCompile(`(?m)^\s+-metrics-address string\n\s+.*\(default "([^"]*)"\)$`)
	for _, command := range []string{"worker", "gateway"} {
		out, err := exec.Command(costlake, command, "-h").CombinedOutput()
		if err != nil {
			t.Fatalf("costlake %s -h: %v\n%s", command, err, out)
		}
		if !strings.Contains(string(out), "-metrics-address") {
			t.Skipf("costlake %s has no --metrics-address yet: the health checks on :9090 wait for it", command)
		}
		m := flagLine.FindStringSubmatch(string(out))
		if m == nil || m[1] != ":9090" {
			t.Errorf("costlake %s --metrics-address: %v, want the default :9090 the deployment files probe", command, m)
		}
	}
}
