# Ubuntu 22.04 or 24.04 AMIs (amd64 and arm64) for Kasm Workspaces autoscaled Docker
# Agents, with kasm-bootstrap. One build, three sources sharing every provisioner:
# amazon-ebs.ubuntu_amd64 and amazon-ebs.ubuntu_arm64 (Graviton), and qemu.debian12, the
# boot test's local stand-in for the amd64 AMI (tests/boot, docs/boot.md). Build the AMIs
# with `-only='amazon-ebs.*'` (or one of them by name). base_os chooses the Ubuntu release.
#
# Works with Debian's packer 1.6.6 (amazon-ebs built in) and Packer 1.7+ (after
# `packer init packer/plugins`; see plugins/plugins.pkr.hcl for why that block lives
# there). Build: see README.md.

locals {
  timestamp      = regex_replace(timestamp(), "[- TZ:]", "")
  deb_file       = var.deb_file != "" ? var.deb_file : "${path.root}/../build/static/kasm-bootstrap.deb"
  deb_file_arm64 = var.deb_file_arm64 != "" ? var.deb_file_arm64 : "${path.root}/../build/static-arm64/kasm-bootstrap.deb"

  # Canonical's AMI names per release and architecture (owner 099720109477). Noble's
  # images are published under hvm-ssd-gp3, Jammy's under hvm-ssd.
  base_os_names = {
    "ubuntu-22.04" = "Ubuntu 22.04 (Jammy)"
    "ubuntu-24.04" = "Ubuntu 24.04 (Noble)"
  }
  ami_filters = {
    "ubuntu-22.04" = {
      amd64 = "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-*"
      arm64 = "ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-arm64-server-*"
    }
    "ubuntu-24.04" = {
      amd64 = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"
      arm64 = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-*"
    }
  }
  source_ami_name_filter       = var.source_ami_name_filter != "" ? var.source_ami_name_filter : local.ami_filters[var.base_os].amd64
  source_ami_name_filter_arm64 = var.source_ami_name_filter_arm64 != "" ? var.source_ami_name_filter_arm64 : local.ami_filters[var.base_os].arm64
  ami_name_prefix              = var.ami_name_prefix != "" ? var.ami_name_prefix : "kasm-bootstrap-agent-${var.base_os}"
  ami_name                     = "${local.ami_name_prefix}-${local.timestamp}"
  ami_name_arm64               = "${local.ami_name_prefix}-arm64-${local.timestamp}"

  # The version the .deb carries (cmake/Packaging.cmake: the project VERSION), read from
  # this checkout's CMakeLists.txt unless given; provision.sh checks the installed package
  # against it, so the tags cannot name another version. (packer 1.6.6 has no regex():
  # regex_replace keeps the captured group of a whole-file match; no match, or no
  # CMakeLists.txt, gives "unknown", which provision.sh then refuses.)
  cmakelists             = try(file(abspath("${path.root}/../CMakeLists.txt")), "")
  cmakelists_version     = regex_replace(local.cmakelists, "(?s)^.*\\nproject\\(kasm-bootstrap VERSION ([0-9][0-9A-Za-z.+~]*)[ )].*$", "$1")
  kasm_bootstrap_version = var.kasm_bootstrap_version != "" ? var.kasm_bootstrap_version : (local.cmakelists_version != local.cmakelists ? local.cmakelists_version : "unknown")

  # The Kasm version, for tags and the manifest only: given, or from the release's file
  # name (kasm_release_1.16.1.tar.gz, kasm_release_1.16.1.abcdef.tar.gz), else "unknown".
  release_file    = basename(var.release_url)
  release_guess   = regex_replace(local.release_file, "^kasm_release_([0-9]+[.][0-9]+[.][0-9]+)[.].*$", "$1")
  release_version = var.release_version != "" ? var.release_version : (local.release_guess != local.release_file ? local.release_guess : "unknown")

  # /etc/kasm-bootstrap/config.json: what every agent made from this image shares. What
  # Kasm renders into user-data (server id, token, manager, names, certificates) comes
  # on top of it at boot, key by key.
  image_defaults = merge({
    release_url    = var.release_url
    release_sha256 = lower(var.release_sha256)
    cache_dir      = var.cache_dir
    swap_size      = var.swap_size
    metrics_file   = var.metrics_file
  }, var.extra_image_defaults)

  # qemu.debian12: its disk and output, by default under this checkout's build/.
  qemu_source_image     = var.qemu_source_image != "" ? var.qemu_source_image : "${path.root}/../build/boot/source.qcow2"
  qemu_output_directory = var.qemu_output_directory != "" ? var.qemu_output_directory : "${path.root}/../build/boot/image"

  # On the AMI and its snapshot. {{ .SourceAMI }} and {{ .SourceAMIName }} are filled in by
  # the amazon-ebs builder (its tag template data), not by HCL.
  image_tags = {
    Name                   = local.ami_name
    kasm-bootstrap         = "true"
    kasm-bootstrap-version = local.kasm_bootstrap_version
    kasm-release-version   = local.release_version
    kasm-release-sha256    = lower(var.release_sha256)
    base-os                = var.base_os
    architecture           = "x86_64"
    source-ami             = "{{ .SourceAMI }}"
    source-ami-name        = "{{ .SourceAMIName }}"
    baked                  = var.baked ? "true" : "false"
  }
  image_tags_arm64 = merge(local.image_tags, {
    Name         = local.ami_name_arm64
    architecture = "arm64"
  })
}

source "amazon-ebs" "ubuntu_amd64" {
  region                      = var.region
  instance_type               = var.instance_type
  subnet_id                   = var.subnet_id
  associate_public_ip_address = var.associate_public_ip_address
  ssh_username                = "ubuntu"

  ami_name        = local.ami_name
  ami_description = "${local.base_os_names[var.base_os]} amd64 with kasm-bootstrap for Kasm Workspaces Docker Agents"

  source_ami_filter {
    filters = {
      name                = local.source_ami_name_filter
      root-device-type    = "ebs"
      virtualization-type = "hvm"
      architecture        = "x86_64"
    }
    owners      = ["099720109477"] # Canonical
    most_recent = true
  }

  launch_block_device_mappings {
    device_name           = "/dev/sda1"
    volume_size           = var.volume_size
    volume_type           = "gp3"
    iops                  = 3000 # gp3 baseline (packer 1.6.6 requires both set)
    throughput            = 125
    delete_on_termination = true
  }

  # IMDSv2: kasm-bootstrap speaks IMDSv2 only, so agents work with HttpTokens=required,
  # and with hop limit 1 a container (one hop further) gets no token (docs/platform.md).
  # Packer 1.7+ users may add, here, `metadata_options { http_tokens = "required"
  # http_put_response_hop_limit = 1 }` for the build instance and `imds_support = "v2.0"`
  # (amazon plugin >= 1.2) to register the AMI IMDSv2-only; Debian's packer 1.6.6 rejects
  # both ("Blocks of type "metadata_options" are not expected here"), so they are not set.
  # For the agents Kasm launches, see README.md, "Metadata service".

  tags          = local.image_tags
  snapshot_tags = local.image_tags
  run_tags = {
    Name = "packer-kasm-bootstrap-build"
  }
}

# The same image for Graviton (arm64): its own instance type, Canonical's arm64 AMI and
# the arm64 .deb (deb_file_arm64); every provisioner below is shared.
source "amazon-ebs" "ubuntu_arm64" {
  region                      = var.region
  instance_type               = var.instance_type_arm64
  subnet_id                   = var.subnet_id
  associate_public_ip_address = var.associate_public_ip_address
  ssh_username                = "ubuntu"

  ami_name        = local.ami_name_arm64
  ami_description = "${local.base_os_names[var.base_os]} arm64 with kasm-bootstrap for Kasm Workspaces Docker Agents"

  source_ami_filter {
    filters = {
      name                = local.source_ami_name_filter_arm64
      root-device-type    = "ebs"
      virtualization-type = "hvm"
      architecture        = "arm64"
    }
    owners      = ["099720109477"] # Canonical
    most_recent = true
  }

  launch_block_device_mappings {
    device_name           = "/dev/sda1"
    volume_size           = var.volume_size
    volume_type           = "gp3"
    iops                  = 3000 # gp3 baseline (packer 1.6.6 requires both set)
    throughput            = 125
    delete_on_termination = true
  }

  # IMDSv2: as for ubuntu_amd64 above.

  tags          = local.image_tags_arm64
  snapshot_tags = local.image_tags_arm64
  run_tags = {
    Name = "packer-kasm-bootstrap-build"
  }
}

# The boot test's image (tests/boot/boot_test.py build; docs/boot.md): the same
# provisioners as the AMIs, run over SSH on a local VM instead of an EC2 build instance.
# Its disk is a Debian 12 cloud image the test makes with debootstrap: the stand-in for
# Canonical's Ubuntu 22.04 AMI, since no Ubuntu image or archive is reachable from the
# machines this project is tested on. Like an EC2 build instance it boots with cloud-init,
# whose Ec2 datasource reads the instance metadata (the test serves it, with the build
# user's public key), and Packer connects as the image's default user. The test passes
# the QEMU command line (qemu_args: the kernel, the disks, its network in the test's
# namespace, the EC2 SMBIOS table); without it Packer's defaults apply. Software
# emulation (TCG): the test machines have no KVM.
source "qemu" "debian12" {
  disk_image       = true
  iso_url          = local.qemu_source_image
  iso_checksum     = "none" # a local file the test has just made (make-base-image.sh)
  use_backing_file = false  # a copy: the cached source image is never written
  skip_resize_disk = true   # the source image is made with room to spare
  skip_compaction  = true   # the boot test boots the image as it is written
  disk_compression = false
  format           = "qcow2"
  accelerator      = "tcg"
  headless         = true
  memory           = 3072
  cpus             = 2
  vm_name          = "kasm-bootstrap.qcow2"
  output_directory = local.qemu_output_directory
  qemuargs         = var.qemu_args

  communicator         = "ssh"
  ssh_username         = "debian" # the default user of Debian's cloud-init (ubuntu on Ubuntu)
  ssh_private_key_file = var.qemu_ssh_private_key_file
  ssh_host             = var.qemu_ssh_host
  skip_nat_mapping     = var.qemu_ssh_host != ""
  ssh_timeout          = "30m" # a first boot under TCG, cloud-init included, takes minutes
  shutdown_command     = "sudo -n shutdown -P now"
  shutdown_timeout     = "15m"
}

build {
  sources = ["source.amazon-ebs.ubuntu_amd64", "source.amazon-ebs.ubuntu_arm64", "source.qemu.debian12"]

  # The .deb of the source's architecture (provision.sh checks that it matches the machine).
  provisioner "file" {
    only        = ["amazon-ebs.ubuntu_amd64", "qemu.debian12"]
    source      = local.deb_file
    destination = "/tmp/kasm-bootstrap.deb"
  }
  provisioner "file" {
    only        = ["amazon-ebs.ubuntu_arm64"]
    source      = local.deb_file_arm64
    destination = "/tmp/kasm-bootstrap.deb"
  }

  # Install the .deb, write the image defaults, enable the units, pre-fetch the release.
  provisioner "shell" {
    execute_command = "chmod +x {{ .Path }}; sudo -n -E env {{ .Vars }} bash {{ .Path }}"
    script          = "${path.root}/scripts/provision.sh"
    environment_vars = concat([
      "KB_DEB=/tmp/kasm-bootstrap.deb",
      "KB_IMAGE_DEFAULTS=${jsonencode(local.image_defaults)}",
      "KB_RELEASE_URL=${var.release_url}",
      "KB_RELEASE_SHA256=${lower(var.release_sha256)}",
      "KB_CACHE_DIR=${var.cache_dir}",
      "KB_PREFETCH=${var.prefetch_release}",
      "KB_TOOL_VERSION=${local.kasm_bootstrap_version}",
      "KB_METRICS_FILE=${var.metrics_file}",
    ], var.provisioner_environment)
  }

  # Pre-baked fast path (docs/kasm-installer.md §9): Docker, the release and its service images
  # installed but not started (install.sh -D, placeholder registration values, the
  # installer's nginx key removed), recorded in /etc/kasm-bootstrap/bake.json. At boot
  # `run` sees the manifest and only does the per-instance parts.
  provisioner "shell" {
    execute_command = "chmod +x {{ .Path }}; sudo -n -E env {{ .Vars }} bash {{ .Path }}"
    environment_vars = concat([
      "KB_BAKED=${var.baked}",
      "KB_SERVICE_IMAGES=${var.service_images}",
    ], var.provisioner_environment)
    inline = [
      "set -euo pipefail",
      "if [ \"$KB_BAKED\" != true ]; then echo '==> baked=false: skipping kasm-bootstrap prebake'; exit 0; fi",
      "echo '==> baked=true: kasm-bootstrap prebake'",
      "if [ -n \"$KB_SERVICE_IMAGES\" ]; then export KASM_BOOTSTRAP_SERVICE_IMAGES=\"$KB_SERVICE_IMAGES\"; fi",
      "kasm-bootstrap prebake --config /etc/kasm-bootstrap/config.json",
    ]
  }

  # Last: make the image generic (no instance identity, no logs, no state).
  provisioner "shell" {
    execute_command  = "chmod +x {{ .Path }}; sudo -n -E env {{ .Vars }} bash {{ .Path }}"
    script           = "${path.root}/scripts/clean.sh"
    environment_vars = var.provisioner_environment
  }

  # build/packer-manifest.json: artifact_id is <region>:<ami id>; custom_data says what the
  # image carries. Not for qemu.debian12, whose builder has no SourceAMI: the boot test
  # reads its image from qemu_output_directory.
  post-processor "manifest" {
    only       = ["amazon-ebs.ubuntu_amd64", "amazon-ebs.ubuntu_arm64"]
    output     = "${path.root}/../build/packer-manifest.json"
    strip_path = true
    custom_data = {
      kasm_release_version   = local.release_version
      kasm_release_sha256    = lower(var.release_sha256)
      kasm_release_url       = var.release_url
      kasm_bootstrap_version = local.kasm_bootstrap_version
      base_os                = var.base_os
      source_ami             = "${build.SourceAMI}"
      source_ami_name        = "${build.SourceAMIName}"
      baked                  = var.baked ? "true" : "false"
    }
  }
}
