/*
Copyright 2026 The edgetwin Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Command imagebuild packs one static binary into a container image tarball, without Docker:
//
//	imagebuild --binary bin/linux_amd64/cloudcore --name edgetwin/cloudcore:v0.1.0 --output dist/images/cloudcore.tar
//
// The image has two layers: a base (an /etc/passwd and /etc/group naming the non-root user
// 65532, /tmp, and any --dir owned by that user) and the binary at /<name of the binary>, which
// is the entrypoint. The tarball is an OCI image layout (oci-layout, index.json, blobs/) that
// also carries a Docker manifest.json, as 'docker save' writes since Docker 25, so
// 'ctr images import', 'docker load', 'podman load' and skopeo's oci-archive all read it.
// Its bytes depend only on the inputs: every timestamp is --created (default the Unix epoch).
package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// nonRoot is the user the image runs as, as in distroless's "nonroot" images.
const nonRoot = 65532

type dirList []string

func (d *dirList) String() string { return strings.Join(*d, ",") }
func (d *dirList) Set(v string) error {
	if !path.IsAbs(v) {
		return fmt.Errorf("%q is not an absolute path", v)
	}
	*d = append(*d, path.Clean(v))
	return nil
}

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "imagebuild:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	flags := flag.NewFlagSet("imagebuild", flag.ContinueOnError)
	binary := flags.String("binary", "", "The static Linux binary to pack; it becomes /<its name> and the entrypoint.")
	ref := flags.String("name", "", "The image's name and tag, for example edgetwin/cloudcore:v0.1.0.")
	output := flags.String("output", "", "The tarball to write.")
	arch := flags.String("arch", runtime.GOARCH, "The binary's architecture (GOARCH).")
	created := flags.Int64("created", 0, "The image's creation time and every file's, in seconds since the Unix epoch (SOURCE_DATE_EPOCH).")
	source := flags.String("source", "", "The org.opencontainers.image.source label, if any.")
	var dirs dirList
	flags.Var(&dirs, "dir", "An empty directory to create, owned by the image's user (repeatable), for example /var/lib/edgecore.")
	if err := flags.Parse(args); err != nil {
		return err
	}
	if *binary == "" || *ref == "" || *output == "" {
		return errors.New("--binary, --name and --output are required")
	}
	tag, err := name.NewTag(*ref)
	if err != nil {
		return fmt.Errorf("image name %q: %w", *ref, err)
	}
	img, err := build(*binary, tag, *arch, time.Unix(*created, 0).UTC(), *source, dirs)
	if err != nil {
		return err
	}
	return writeArchive(img, tag, *output)
}

// build assembles the image.
func build(binary string, tag name.Tag, arch string, created time.Time, source string, dirs []string) (v1.Image, error) {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	entry := "/" + filepath.Base(binary)
	base, err := layer(created, baseFiles(dirs))
	if err != nil {
		return nil, err
	}
	app, err := layer(created, []file{{name: entry, mode: 0o755, data: bin}})
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "imagebuild: base files",
			Comment: "passwd, group, /tmp"}},
		mutate.Addendum{Layer: app, History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "imagebuild: " + entry}},
	)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS, cfg.Created = arch, "linux", v1.Time{Time: created}
	labels := map[string]string{
		"org.opencontainers.image.title":    strings.TrimPrefix(entry, "/"),
		"org.opencontainers.image.version":  tag.TagStr(),
		"org.opencontainers.image.created":  created.Format(time.RFC3339),
		"org.opencontainers.image.licenses": "Apache-2.0",
	}
	if source != "" {
		labels["org.opencontainers.image.source"] = source
	}
	cfg.Config = v1.Config{
		Entrypoint: []string{entry},
		User:       fmt.Sprintf("%d:%d", nonRoot, nonRoot),
		WorkingDir: "/",
		Env:        []string{"PATH=/"},
		Labels:     labels,
	}
	return mutate.ConfigFile(img, cfg)
}

type file struct {
	name     string
	mode     int64
	data     []byte
	dir      bool
	uid, gid int
}

func baseFiles(dirs []string) []file {
	files := make([]file, 0, 8+2*len(dirs))
	files = append(files, []file{
		{name: "/etc", mode: 0o755, dir: true},
		{name: "/etc/passwd", mode: 0o644, data: fmt.Appendf(nil,
			"root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonRoot, nonRoot)},
		{name: "/etc/group", mode: 0o644, data: fmt.Appendf(nil, "root:x:0:\nnonroot:x:%d:\n", nonRoot)},
		{name: "/home", mode: 0o755, dir: true},
		{name: "/home/nonroot", mode: 0o700, dir: true, uid: nonRoot, gid: nonRoot},
		{name: "/tmp", mode: 0o1777, dir: true},
	}...)
	for _, d := range dirs {
		// The parents, root's, then the directory itself, the user's.
		var parents []string
		for p := path.Dir(d); p != "/"; p = path.Dir(p) {
			parents = append(parents, p)
		}
		slices.Reverse(parents)
		for _, p := range parents {
			files = append(files, file{name: p, mode: 0o755, dir: true})
		}
		files = append(files, file{name: d, mode: 0o750, dir: true, uid: nonRoot, gid: nonRoot})
	}
	// One entry per path, the last word wins, in a stable order.
	seen := map[string]int{}
	var out []file
	for _, f := range files {
		if i, ok := seen[f.name]; ok {
			out[i] = f
			continue
		}
		seen[f.name] = len(out)
		out = append(out, f)
	}
	return out
}

// layer makes a gzip-compressed OCI layer of files.
func layer(mtime time.Time, files []file) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{
			Name: strings.TrimPrefix(f.name, "/"), Mode: f.mode, ModTime: mtime,
			Uid: f.uid, Gid: f.gid, Format: tar.FormatPAX,
		}
		if f.dir {
			hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
		} else {
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(f.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// writeArchive writes img as an OCI layout with a Docker manifest.json beside it, in one tar.
func writeArchive(img v1.Image, tag name.Tag, output string) error {
	dir, err := os.MkdirTemp("", "imagebuild-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := lp.AppendImage(img, layout.WithAnnotations(map[string]string{
		// containerd names the imported image after the first; the second is the OCI tag.
		"io.containerd.image.name":          containerdName(tag),
		"org.opencontainers.image.ref.name": tag.TagStr(),
	})); err != nil {
		return err
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return err
	}
	manifest, err := img.Manifest()
	if err != nil {
		return err
	}
	dockerManifest := []map[string]any{{
		"Config":   blobPath(cfgName),
		"RepoTags": []string{tag.String()},
		"Layers":   layerPaths(manifest.Layers),
	}}
	raw, err := json.Marshal(dockerManifest)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "manifest.json"), raw, 0o644); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(output), 0o755); err != nil {
		return err
	}
	tmp := output + ".tmp"
	if err := tarDir(dir, tmp); err != nil {
		return err
	}
	return os.Rename(tmp, output)
}

// containerdName is the image's full name as containerd spells it: images of the default
// registry under its short host name (go-containerregistry's default without "index."), as
// 'docker save' writes them.
func containerdName(tag name.Tag) string {
	if tag.RegistryStr() == name.DefaultRegistry {
		return strings.TrimPrefix(name.DefaultRegistry, "index.") + "/" + tag.RepositoryStr() + ":" + tag.TagStr()
	}
	return tag.Name()
}

func blobPath(h v1.Hash) string { return path.Join("blobs", h.Algorithm, h.Hex) }

func layerPaths(layers []v1.Descriptor) []string {
	paths := make([]string, 0, len(layers))
	for _, l := range layers {
		paths = append(paths, blobPath(l.Digest))
	}
	return paths
}

// tarDir writes the files under dir to a tar file, sorted, with fixed owners and times.
func tarDir(dir, output string) (err error) {
	f, err := os.Create(output)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: filepath.ToSlash(rel), ModTime: time.Unix(0, 0).UTC(), Format: tar.FormatPAX}
		if d.IsDir() {
			hdr.Typeflag, hdr.Mode, hdr.Name = tar.TypeDir, 0o755, hdr.Name+"/"
			return tw.WriteHeader(hdr)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeReg, 0o644, int64(len(data))
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err = tw.Write(data)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
