// SPDX-License-Identifier: Apache-2.0

// {{ cookiecutter.name }}'s WASM module (Inspektor Gadget's Go API, wasmapi/go): for each
// event of the "{{ cookiecutter.name }}" data source it adds "file", the base name of
// "path", and "in_tmp", whether the path is under /tmp. `gadget build` compiles it to a
// WASI reactor (GOOS=wasip1 GOARCH=wasm, -buildmode=c-shared) into the image's WASM layer.
package main

import (
	"path"
	"strings"

	api "github.com/inspektor-gadget/inspektor-gadget/wasmapi/go"
)

// the longest path the eBPF program sends (PATH_LEN in program.bpf.c)
const pathLen = 256

var pathF, fileF, inTmpF api.Field

//go:wasmexport gadgetInit
func gadgetInit() int32 {
	ds, err := api.GetDataSource("{{ cookiecutter.name }}")
	if err != nil {
		api.Errorf("no data source {{ cookiecutter.name }}: %v", err)
		return 1
	}
	if pathF, err = ds.GetField("path"); err != nil {
		api.Errorf("no field path: %v", err)
		return 1
	}
	// EDIT: the fields the module adds (describe them in gadget.yaml too)
	if fileF, err = ds.AddField("file", api.Kind_String); err != nil {
		return 1
	}
	if inTmpF, err = ds.AddField("in_tmp", api.Kind_Bool); err != nil {
		return 1
	}
	// EDIT: what is done with each event (priority 0: before the runtime's later stages)
	err = ds.Subscribe(func(_ api.DataSource, data api.Data) {
		p, err := pathF.String(data, pathLen)
		if err != nil {
			api.Warnf("reading path: %v", err)
			return
		}
		fileF.SetString(data, path.Base(p))
		inTmpF.SetBool(data, strings.HasPrefix(p, "/tmp/"))
	}, 0)
	if err != nil {
		return 1
	}
	return 0
}

func main() {}
