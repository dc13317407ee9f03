# Inputs of the AMI build. Set them with -var NAME=VALUE (see README.md).

variable "region" {
  type        = string
  default     = "us-east-1"
  description = "AWS region the build instance runs in and the AMI is registered in."
}

variable "instance_type" {
  type        = string
  default     = "t3.small"
  description = "Instance type of the temporary amd64 (x86_64) build instance."
}

variable "instance_type_arm64" {
  type        = string
  default     = "t4g.medium"
  description = "Instance type of the temporary arm64 build instance: a Graviton type (t4g, m7g, c7g ...)."
}

# Validation blocks work in Debian's packer 1.6.6 (see release_url below for what their
# conditions may call).
variable "base_os" {
  type        = string
  default     = "ubuntu-22.04"
  description = "Base image: ubuntu-22.04 (Jammy) or ubuntu-24.04 (Noble), Canonical's latest AMI of that release; chooses the AMI name filters and the base-os tag."

  validation {
    condition     = var.base_os == "ubuntu-22.04" || var.base_os == "ubuntu-24.04"
    error_message = "The base_os variable must be ubuntu-22.04 or ubuntu-24.04."
  }
}

variable "subnet_id" {
  type        = string
  default     = ""
  description = "Subnet for the build instance; empty = the default VPC's default subnet."
}

variable "associate_public_ip_address" {
  type        = bool
  default     = true
  description = "Give the build instance a public IP (Packer connects over SSH)."
}

variable "volume_size" {
  type        = number
  default     = 16
  description = "Root volume size (GiB) of the image. Kasm's VM provider config sets the size of the agents' volumes."
}

variable "ami_name_prefix" {
  type        = string
  default     = ""
  description = "AMI name prefix; a UTC timestamp is appended (the arm64 image also gets -arm64 before it). Empty = kasm-bootstrap-agent-<base_os>."
}

variable "source_ami_name_filter" {
  type        = string
  default     = ""
  description = "Name filter for the amd64 source AMI (owner 099720109477, Canonical); empty = from base_os: ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-amd64-server-* or ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*."
}

variable "source_ami_name_filter_arm64" {
  type        = string
  default     = ""
  description = "Name filter for the arm64 source AMI (Canonical); empty = from base_os: ubuntu/images/hvm-ssd/ubuntu-jammy-22.04-arm64-server-* or ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-arm64-server-*."
}

variable "deb_file" {
  type        = string
  default     = ""
  description = "kasm-bootstrap .deb (amd64) to install; empty = build/static/kasm-bootstrap.deb of this checkout (scripts/build-deb.sh)."
}

variable "deb_file_arm64" {
  type        = string
  default     = ""
  description = "kasm-bootstrap .deb (arm64) for the arm64 image; empty = build/static-arm64/kasm-bootstrap.deb of this checkout."
}

# Validation blocks work in Debian's packer 1.6.6, but its validation conditions can call
# no regex() or regexall() ("Call to unknown function"; can() turns that into false, so
# every value would be refused): they use Packer's own regex_replace(), which is there.
# regex_replace(v, "^...$", "") is "" exactly when the whole of v matches, or v is "".
variable "release_url" {
  type        = string
  description = "HTTPS URL of the Kasm release tarball the agents install (written into the image defaults)."

  validation {
    condition     = var.release_url != "" && regex_replace(var.release_url, "^https://[^/[:space:]]+(/[^[:space:]]*)?$", "") == ""
    error_message = "The release_url variable must be an https:// URL with a host and no spaces (kasm-bootstrap and provision.sh fetch over HTTPS only)."
  }
}

variable "release_sha256" {
  type        = string
  description = "SHA-256 of the release tarball (64 hex digits)."

  validation {
    condition     = length(var.release_sha256) == 64 && regex_replace(var.release_sha256, "^[0-9a-fA-F]{64}$", "") == ""
    error_message = "The release_sha256 variable must be exactly 64 hexadecimal digits (a SHA-256)."
  }
}

variable "release_version" {
  type        = string
  default     = ""
  description = "Kasm version of the release, for the AMI's tags and the manifest only; empty = from release_url's file name (kasm_release_<version>...), else \"unknown\". kasm-bootstrap itself reads the version from the unpacked release."
}

variable "kasm_bootstrap_version" {
  type        = string
  default     = ""
  description = "Version of the kasm-bootstrap .deb, for the AMI's tags and the manifest; empty = the project VERSION in this checkout's CMakeLists.txt (what scripts/build-deb.sh builds). provision.sh fails when the installed package has another version."
}

variable "metrics_file" {
  type        = string
  default     = "/var/lib/prometheus/node-exporter/kasm_bootstrap.prom"
  description = "Image default metrics_file: the Prometheus textfile kasm-bootstrap writes (default: in the textfile directory of Debian/Ubuntu's prometheus-node-exporter, which provision.sh creates if absent); empty = none."
}

variable "prefetch_release" {
  type        = bool
  default     = true
  description = "Download and verify the release into cache_dir at build time, so agents need no download at boot."
}

variable "cache_dir" {
  type        = string
  default     = "/var/cache/kasm-bootstrap"
  description = "Where kasm-bootstrap keeps verified releases (image default cache_dir)."
}

variable "swap_size" {
  type        = string
  default     = "auto"
  description = "Image default swap policy: auto, off, 0, or a size such as 8G."
}

variable "baked" {
  type        = bool
  default     = false
  description = "Pre-baked fast path: also install Docker, the release and its service images at build time (kasm-bootstrap prebake); instances then take the fast path at boot."
}

variable "service_images" {
  type        = string
  default     = ""
  description = "baked=true only: path ON THE BUILD INSTANCE of Kasm's offline service images tarball, passed to install.sh -s (empty = the installer pulls them)."
}

variable "extra_image_defaults" {
  type        = map(string)
  default     = {}
  description = "More keys for the image defaults /etc/kasm-bootstrap/config.json (docs/configuration.md), as text; e.g. ca_bundle for a release mirror behind a private CA. A key given here wins over the variables above."
}

variable "provisioner_environment" {
  type        = list(string)
  default     = []
  description = "More NAME=VALUE environment for every provisioner script on the build instance, e.g. https_proxy=http://proxy:3128 or CURL_CA_BUNDLE=/path (provision.sh's pre-fetch uses curl)."
}

# qemu.debian12 only: the boot test's local build (tests/boot/boot_test.py; docs/boot.md).
variable "qemu_source_image" {
  type        = string
  default     = ""
  description = "qemu.debian12: the disk image the VM starts from (tests/boot/make-base-image.sh); empty = build/boot/source.qcow2 of this checkout."
}

variable "qemu_output_directory" {
  type        = string
  default     = ""
  description = "qemu.debian12: where the built image (kasm-bootstrap.qcow2) goes; must not exist; empty = build/boot/image of this checkout."
}

variable "qemu_ssh_private_key_file" {
  type        = string
  default     = ""
  description = "qemu.debian12: private key of the build user, whose public key the instance metadata gives to cloud-init."
}

variable "qemu_ssh_host" {
  type        = string
  default     = ""
  description = "qemu.debian12: the VM's address when qemu_args gives it a network of its own; empty = Packer's user-mode network and port forward on 127.0.0.1."
}

variable "qemu_args" {
  type        = list(list(string))
  default     = []
  description = "qemu.debian12: QEMU arguments, each a list of an option and its value (Packer's qemuargs); an option given here replaces Packer's default for it (-drive, -netdev, -device)."
}
