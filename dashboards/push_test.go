package dashboards

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// fakeGrafana checks the requests the way Grafana's HTTP API would take them.
type fakeGrafana struct {
	t          *testing.T
	mu         sync.Mutex
	folder     bool // the folder exists
	saved      []string
	folderFail bool
}

func (f *fakeGrafana) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer s3cret" {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"message":"invalid API key"}`)
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/grafana/api/folders/weft":
		if !f.folder {
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"message":"folder not found"}`)
			return
		}
		_, _ = io.WriteString(w, `{"uid":"weft","title":"weft"}`)
	case r.Method == http.MethodPost && r.URL.Path == "/grafana/api/folders":
		var body map[string]string
		require.NoError(f.t, json.NewDecoder(r.Body).Decode(&body))
		assert.Equal(f.t, map[string]string{"uid": "weft", "title": "weft"}, body)
		assert.Equal(f.t, "application/json", r.Header.Get("Content-Type"))
		if f.folderFail {
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"message":"Access denied"}`)
			return
		}
		f.folder = true
		_, _ = io.WriteString(w, `{"uid":"weft"}`)
	case r.Method == http.MethodPost && r.URL.Path == "/grafana/api/dashboards/db":
		var body struct {
			Dashboard map[string]any `json:"dashboard"`
			FolderUID string         `json:"folderUid"`
			Overwrite bool           `json:"overwrite"`
		}
		require.NoError(f.t, json.NewDecoder(r.Body).Decode(&body))
		assert.True(f.t, f.folder, "the folder is created before dashboards are saved into it")
		assert.Equal(f.t, "weft", body.FolderUID)
		assert.True(f.t, body.Overwrite)
		assert.NotContains(f.t, body.Dashboard, "id", "dashboards are matched by uid")
		assert.NotEmpty(f.t, body.Dashboard["panels"])
		f.saved = append(f.saved, body.Dashboard["uid"].(string))
		_, _ = io.WriteString(w, `{"status":"success"}`)
	default:
		f.t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		w.WriteHeader(http.StatusNotFound)
	}
}

func TestPush(t *testing.T) {
	ds := buildAll(t)
	opts := DefaultOptions()
	for _, exists := range []bool{false, true} {
		f := &fakeGrafana{t: t, folder: exists}
		srv := httptest.NewServer(f)
		err := Pusher{URL: srv.URL + "/grafana/", Token: "s3cret"}.Push(context.Background(), ds, opts)
		srv.Close()
		require.NoError(t, err)
		var want []string
		for _, d := range ds {
			want = append(want, d.UID)
		}
		assert.Equal(t, want, f.saved)
	}
}

func TestPushErrors(t *testing.T) {
	ds := buildAll(t)
	f := &fakeGrafana{t: t}
	srv := httptest.NewServer(f)
	defer srv.Close()

	err := Pusher{URL: srv.URL + "/grafana", Token: "wrong"}.Push(context.Background(), ds, DefaultOptions())
	var apiErr *APIError
	require.True(t, errors.As(err, &apiErr), "%v", err)
	assert.Equal(t, http.StatusUnauthorized, apiErr.Status)
	assert.Equal(t, "invalid API key", apiErr.Message)

	f.folderFail = true
	err = Pusher{URL: srv.URL + "/grafana", Token: "s3cret"}.Push(context.Background(), ds, DefaultOptions())
	require.ErrorContains(t, err, "create folder weft")
	require.ErrorContains(t, err, "Access denied")

	assert.Error(t, Pusher{URL: "grafana:3000"}.Push(context.Background(), ds, DefaultOptions()))
}

func TestProvisioningWrite(t *testing.T) {
	dir := t.TempDir()
	ds := buildAll(t)
	opts := DefaultOptions()
	written, err := Provisioning{Dir: dir, DataSource: DataSource{Host: "clickhouse", Port: 9000, Username: "weft", PasswordEnv: "WEFT_CLICKHOUSE_PASSWORD"}}.Write(ds, opts)
	require.NoError(t, err)
	assert.Len(t, written, len(ds)+2)

	for _, d := range ds {
		b, err := os.ReadFile(filepath.Join(dir, "dashboards", d.UID+".json"))
		require.NoError(t, err)
		want, _ := d.JSON()
		assert.JSONEq(t, string(want), string(b))
	}

	var prov providerFile
	b, err := os.ReadFile(filepath.Join(dir, "provisioning", "dashboards", "weft.yaml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &prov))
	require.Len(t, prov.Providers, 1)
	p := prov.Providers[0]
	assert.Equal(t, "file", p.Type)
	assert.Equal(t, "weft", p.FolderUID)
	assert.Equal(t, filepath.Join(dir, "dashboards"), p.Options["path"])

	var dsf datasourceFile
	b, err = os.ReadFile(filepath.Join(dir, "provisioning", "datasources", "weft.yaml"))
	require.NoError(t, err)
	require.NoError(t, yaml.Unmarshal(b, &dsf))
	require.Len(t, dsf.Datasources, 1)
	src := dsf.Datasources[0]
	assert.Equal(t, ClickHousePluginID, src.Type)
	assert.Equal(t, opts.ClickHouseUID, src.UID, "the UID the dashboards' data source variable selects")
	assert.Equal(t, "clickhouse", src.JSONData["host"])
	assert.Equal(t, 9000, src.JSONData["port"])
	assert.Equal(t, "native", src.JSONData["protocol"])
	assert.Equal(t, "weft", src.JSONData["defaultDatabase"])
	assert.Equal(t, "$WEFT_CLICKHOUSE_PASSWORD", src.SecureJSONData["password"], "no password in the file")
}
