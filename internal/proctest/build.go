package proctest

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// module is the import path of the module whose binaries Binary builds.
const module = "github.com/collectord/collectord"

// Collectord returns the path of the collectord binary, built by Binary.
func Collectord(t testing.TB) string {
	t.Helper()
	return Binary(t, module+"/cmd/collectord")
}

// Logctl returns the path of the logctl binary, built by Binary.
func Logctl(t testing.TB) string {
	t.Helper()
	return Binary(t, module+"/cmd/logctl")
}

// builds holds what this test binary built. It is the one piece of
// process-wide state here: every test shares the builds, and Main removes
// them after the last test.
var builds struct {
	mu   sync.Mutex
	dir  string            // created by the first build; "" until then
	bins map[string]*build // by import path
}

type build struct {
	once sync.Once
	path string
	err  error
}

// Binary builds the main package importPath (of this module, or any the
// go command can build from the test's directory) with the build tags
// given, the first time a test asks for that package and those tags, and
// returns the binary's path; later calls, from any test, return the same
// binary. It is built with -race exactly when the test binary is (Race).
// A failed build fails every test that asks for it.
//
// A first build takes seconds: call it before starting anything timed,
// such as a deadline or a load the daemon must keep up with. The directory
// holding the builds may be entered by every user (tests run binaries as
// other users), and Main removes it after the tests.
func Binary(t testing.TB, importPath string, tags ...string) string {
	t.Helper()
	if !mainRan.Load() {
		t.Fatal("proctest.Binary: the package's TestMain must call proctest.Main, which removes the builds")
	}
	builds.mu.Lock()
	if builds.bins == nil {
		builds.bins = map[string]*build{}
	}
	key := importPath + " " + strings.Join(tags, ",")
	b := builds.bins[key]
	if b == nil {
		b = new(build)
		builds.bins[key] = b
	}
	builds.mu.Unlock()
	var took time.Duration // set by the call that builds
	b.once.Do(func() {
		start := time.Now()
		b.path, b.err = goBuild(importPath, tags)
		took = time.Since(start)
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	if took > 0 {
		t.Logf("proctest: built %s (race detector: %v, tags %q) in %v", importPath, Race, tags, took.Round(time.Millisecond))
	}
	return b.path
}

// goBuild runs go build for importPath with tags into the builds directory.
func goBuild(importPath string, tags []string) (string, error) {
	dir, err := buildDir()
	if err != nil {
		return "", err
	}
	name := path.Base(importPath)
	if len(tags) > 0 {
		name += "-" + strings.Join(tags, "-")
	}
	out := filepath.Join(dir, name)
	if _, err := os.Stat(out); err == nil {
		return "", fmt.Errorf("build %s: another package already built %s", importPath, out)
	}
	args := []string{"build", "-o", out}
	if Race {
		args = append(args, "-race")
	}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.Command("go", append(args, importPath)...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s: %v\n%s", cmd, err, msg)
	}
	return out, nil
}

// buildDir returns the directory the builds go to, creating it first.
func buildDir() (string, error) {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir != "" {
		return builds.dir, nil
	}
	dir, err := os.MkdirTemp("", "proctest-bin")
	if err != nil {
		return "", fmt.Errorf("create build directory: %w", err)
	}
	// Tests that run as root run binaries as other users too.
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("create build directory: %w", err)
	}
	builds.dir = dir
	return dir, nil
}

// removeBuilds removes what Binary built.
func removeBuilds() {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir != "" {
		os.RemoveAll(builds.dir)
		builds.dir = ""
	}
}
