package dashboards

import (
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// DataSource says how Grafana reaches weft's ClickHouse, for the data
// source provisioning file.
type DataSource struct {
	// Host and Port of ClickHouse's native protocol, as Grafana sees them.
	Host string
	Port int
	// Username to log in as; the password is read by Grafana from the
	// environment variable PasswordEnv, never written to the file.
	Username    string
	PasswordEnv string
	// Secure turns on TLS.
	Secure bool
}

// Provisioning is what `weft dashboards generate` writes.
type Provisioning struct {
	// Dir receives dashboards/<uid>.json and provisioning/{dashboards,datasources}/weft.yaml.
	Dir string
	// DashboardsPath is where Grafana finds the dashboard files (the
	// provider's options.path): Dir/dashboards as Grafana's host mounts it.
	// Default: the absolute path of Dir/dashboards.
	DashboardsPath string
	DataSource     DataSource
}

type providerFile struct {
	APIVersion int        `yaml:"apiVersion"`
	Providers  []provider `yaml:"providers"`
}

type provider struct {
	Name                  string            `yaml:"name"`
	OrgID                 int               `yaml:"orgId"`
	Folder                string            `yaml:"folder"`
	FolderUID             string            `yaml:"folderUid"`
	Type                  string            `yaml:"type"`
	DisableDeletion       bool              `yaml:"disableDeletion"`
	AllowUIUpdates        bool              `yaml:"allowUiUpdates"`
	UpdateIntervalSeconds int               `yaml:"updateIntervalSeconds"`
	Options               map[string]string `yaml:"options"`
}

type datasourceFile struct {
	APIVersion  int          `yaml:"apiVersion"`
	Datasources []datasource `yaml:"datasources"`
}

type datasource struct {
	Name           string            `yaml:"name"`
	UID            string            `yaml:"uid"`
	Type           string            `yaml:"type"`
	Editable       bool              `yaml:"editable"`
	JSONData       map[string]any    `yaml:"jsonData"`
	SecureJSONData map[string]string `yaml:"secureJsonData,omitempty"`
}

// Write writes the dashboards and Grafana's provisioning files for them and
// the ClickHouse data source, and returns the paths written.
func (p Provisioning) Write(ds []Dashboard, opts Options) ([]string, error) {
	dashDir := filepath.Join(p.Dir, "dashboards")
	var written []string
	write := func(path string, b []byte) error {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		written = append(written, path)
		return nil
	}
	for _, d := range ds {
		b, err := d.JSON()
		if err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", d.UID, err)
		}
		if err := write(filepath.Join(dashDir, d.UID+".json"), append(b, '\n')); err != nil {
			return nil, err
		}
	}
	path := p.DashboardsPath
	if path == "" {
		abs, err := filepath.Abs(dashDir)
		if err != nil {
			return nil, err
		}
		path = abs
	}
	prov, err := yaml.Marshal(providerFile{APIVersion: 1, Providers: []provider{{
		Name: "weft", OrgID: 1, Folder: opts.Folder, FolderUID: opts.FolderUID, Type: "file",
		UpdateIntervalSeconds: 30, Options: map[string]string{"path": path},
	}}})
	if err != nil {
		return nil, err
	}
	if err := write(filepath.Join(p.Dir, "provisioning", "dashboards", "weft.yaml"), prov); err != nil {
		return nil, err
	}
	src := p.DataSource
	dsf := datasourceFile{APIVersion: 1, Datasources: []datasource{{
		Name: "weft ClickHouse", UID: opts.ClickHouseUID, Type: ClickHousePluginID,
		JSONData: map[string]any{
			"host": src.Host, "port": src.Port, "protocol": "native", "secure": src.Secure,
			"username": src.Username, "defaultDatabase": opts.Database,
		},
	}}}
	if src.PasswordEnv != "" {
		// Grafana expands $VAR in provisioning files from its environment.
		dsf.Datasources[0].SecureJSONData = map[string]string{"password": "$" + src.PasswordEnv}
	}
	dsYAML, err := yaml.Marshal(dsf)
	if err != nil {
		return nil, err
	}
	if err := write(filepath.Join(p.Dir, "provisioning", "datasources", "weft.yaml"), dsYAML); err != nil {
		return nil, err
	}
	return written, nil
}
