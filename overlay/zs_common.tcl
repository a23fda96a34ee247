# zs_common.tcl: procedures shared by package_ip.tcl and pynq_z2_bd.tcl.
#
# Plain Tcl 8.5 (Vivado's interpreter): no Vivado commands run at source time, so the
# file can also be sourced by tests in tclsh.

# Text of a file.
proc zs_read_file {path} {
    set fh [open $path r]
    set text [read $fh]
    close $fh
    return $text
}

# The IP identity from the "ip" object of driver/contract.json, as a dict with keys
# vendor, library, name, version. The contract table is the one definition of the VLNV;
# the pynq driver binds to the same string.
proc zs_contract_ip {json_path} {
    set text [zs_read_file $json_path]
    if {![regexp {"ip"\s*:\s*\{([^\}]*)\}} $text -> body]} {
        error "$json_path has no \"ip\" object: cannot read the IP's VLNV"
    }
    set ip [dict create]
    foreach key {vendor library name version} {
        if {![regexp "\"$key\"\\s*:\\s*\"(\[^\"\]*)\"" $body -> value]} {
            error "$json_path: ip.$key is missing"
        }
        dict set ip $key $value
    }
    return $ip
}

# "vendor:library:name:version" of the contract's IP.
proc zs_contract_vlnv {json_path} {
    set ip [zs_contract_ip $json_path]
    return [join [list [dict get $ip vendor] [dict get $ip library] \
                      [dict get $ip name] [dict get $ip version]] ":"]
}

# The integer members of the object KEY of contract.json ("defaults": LANES, ACT_BYTES,
# W_SLOTS, ...; "program": header_beats, layer_beats, ...) as a dict.
proc zs_contract_ints {json_path key} {
    set text [zs_read_file $json_path]
    set out [dict create]
    set pattern "\"$key\"\\s*:\\s*\\x7b(\[^\\x7d\]*)\\x7d"
    if {[regexp $pattern $text -> body]} {
        foreach {all name value} [regexp -all -inline {"([A-Za-z_0-9]+)"\s*:\s*(-?[0-9]+)} $body] {
            dict set out $name $value
        }
    }
    return $out
}

# The integers of the array KEY of contract.json ("lanes_choices": [4, 8, ...]) as a list.
proc zs_contract_int_list {json_path key} {
    set text [zs_read_file $json_path]
    if {![regexp "\"$key\"\\s*:\\s*\\\[(\[^\\\]\]*)\\\]" $text -> body]} {
        error "$json_path has no array \"$key\""
    }
    return [regexp -all -inline {\-?[0-9]+} $body]
}

# The engine parameter defaults of contract.json.
proc zs_contract_defaults {json_path} {
    return [zs_contract_ints $json_path defaults]
}

# Bytes of the largest program packet a build with these parameters accepts: header,
# MAX_LAYERS descriptors, CH_CAP channel records and the weight blocks of W_SLOTS entries
# (at most one partial block per layer), in 8-byte beats. FORMAT is the "program" object
# of contract.json (beats per section, entries per block).
proc zs_program_max_bytes {params format} {
    set layers [dict get $params MAX_LAYERS]
    set ch [dict get $params CH_CAP]
    set slots [dict get $params W_SLOTS]
    set per_block [dict get $format block_entries]
    set blocks [expr {($slots + $per_block - 1) / $per_block + $layers}]
    set beats [expr {[dict get $format header_beats] + [dict get $format layer_beats] * $layers
                     + [dict get $format channel_beats] * $ch + [dict get $format block_beats] * $blocks}]
    return [expr {8 * $beats}]
}

# Smallest number of bits n with 2^n - 1 >= value.
proc zs_bits_for {value} {
    set n 0
    while {(1 << $n) - 1 < $value} { incr n }
    return $n
}

# Width of the AXI DMA buffer length register (c_sg_length_width). The largest value the
# IP allows, 26 bits (64 MiB - 1 per transfer), is used: a program needs far less, one
# image needs at most ACT_BYTES, and a RUN of up to 65535 images can exceed any width, so
# the driver splits larger batches into transfers below 2^26 bytes. An error is raised if
# the parameters make a single program or image larger than one transfer.
proc zs_dma_length_width {params format} {
    set width 26
    set need [zs_bits_for [zs_program_max_bytes $params $format]]
    set img [zs_bits_for [dict get $params ACT_BYTES]]
    if {$img > $need} { set need $img }
    if {$need > $width} {
        error "a program or image of this build needs a $need-bit DMA length, more than the AXI DMA's 26: reduce W_SLOTS/CH_CAP/ACT_BYTES"
    }
    return $width
}

# Parameters of the engine from "NAME=value" words (the form of a Vivado fileset's
# generic property), over the contract defaults.
proc zs_params_from_generics {generics defaults} {
    set params $defaults
    foreach word $generics {
        if {[regexp {^([A-Za-z_][A-Za-z0-9_]*)=(.*)$} $word -> key value]} {
            dict set params $key $value
        }
    }
    return $params
}
