// Subscribes to "events" and does nothing: the cost of a Go module in the chain.
package main

import api "github.com/inspektor-gadget/inspektor-gadget/wasmapi/go"

//go:wasmexport gadgetInit
func gadgetInit() int32 {
	ds, err := api.GetDataSource("events")
	if err != nil {
		return 1
	}
	if err := ds.Subscribe(func(api.DataSource, api.Data) {}, 0); err != nil {
		return 1
	}
	return 0
}

func main() {}
