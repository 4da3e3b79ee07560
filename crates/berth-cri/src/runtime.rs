//! The gRPC services: each call unpacks its request and answers from [`Cri`]. Calls not
//! listed here answer `Unimplemented` (the generated default).

use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::Cri;
use crate::proto::image_service_server::ImageService;
use crate::proto::runtime_service_server::RuntimeService;
use crate::proto::*;

type Reply<T> = Result<Response<T>, Status>;

/// Both CRI services over one [`Cri`].
#[derive(Clone)]
pub struct Service(pub Arc<Cri>);

/// The CRI version berth implements.
const API_VERSION: &str = "v1";

#[tonic::async_trait]
impl RuntimeService for Service {
    async fn version(&self, _r: Request<VersionRequest>) -> Reply<VersionResponse> {
        Ok(Response::new(VersionResponse {
            version: "0.1.0".into(),
            runtime_name: "berth".into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            runtime_api_version: API_VERSION.into(),
        }))
    }

    async fn status(&self, _r: Request<StatusRequest>) -> Reply<StatusResponse> {
        let conditions = vec![
            RuntimeCondition { r#type: "RuntimeReady".into(), status: true, ..Default::default() },
            // As containerd: ready as soon as the config directory has a network.
            match self.0.cni.network() {
                Ok(_) => RuntimeCondition { r#type: "NetworkReady".into(), status: true, ..Default::default() },
                Err(e) => RuntimeCondition {
                    r#type: "NetworkReady".into(),
                    status: false,
                    reason: "NetworkPluginNotReady".into(),
                    message: format!("Network plugin returns error: {e}"),
                },
            },
        ];
        Ok(Response::new(StatusResponse { status: Some(RuntimeStatus { conditions }), ..Default::default() }))
    }

    async fn runtime_config(&self, _r: Request<RuntimeConfigRequest>) -> Reply<RuntimeConfigResponse> {
        Ok(Response::new(RuntimeConfigResponse {
            linux: Some(LinuxRuntimeConfiguration { cgroup_driver: CgroupDriver::Cgroupfs as i32 }),
        }))
    }

    async fn run_pod_sandbox(&self, r: Request<RunPodSandboxRequest>) -> Reply<RunPodSandboxResponse> {
        let r = r.into_inner();
        let id = self.0.run_pod_sandbox(r.config, r.runtime_handler).await?;
        Ok(Response::new(RunPodSandboxResponse { pod_sandbox_id: id }))
    }

    async fn stop_pod_sandbox(&self, r: Request<StopPodSandboxRequest>) -> Reply<StopPodSandboxResponse> {
        self.0.stop_pod_sandbox(&r.into_inner().pod_sandbox_id).await?;
        Ok(Response::new(StopPodSandboxResponse {}))
    }

    async fn remove_pod_sandbox(&self, r: Request<RemovePodSandboxRequest>) -> Reply<RemovePodSandboxResponse> {
        self.0.remove_pod_sandbox(&r.into_inner().pod_sandbox_id).await?;
        Ok(Response::new(RemovePodSandboxResponse {}))
    }

    async fn pod_sandbox_status(&self, r: Request<PodSandboxStatusRequest>) -> Reply<PodSandboxStatusResponse> {
        let r = r.into_inner();
        let (status, info) = self.0.pod_sandbox_status(&r.pod_sandbox_id, r.verbose)?;
        Ok(Response::new(PodSandboxStatusResponse {
            status: Some(status),
            info,
            timestamp: berth_api::time::now_nanos() as i64,
            ..Default::default()
        }))
    }

    async fn list_pod_sandbox(&self, r: Request<ListPodSandboxRequest>) -> Reply<ListPodSandboxResponse> {
        Ok(Response::new(ListPodSandboxResponse { items: self.0.list_pod_sandbox(r.into_inner().filter) }))
    }

    async fn create_container(&self, r: Request<CreateContainerRequest>) -> Reply<CreateContainerResponse> {
        let r = r.into_inner();
        let id = self.0.create_container(&r.pod_sandbox_id, r.config).await?;
        Ok(Response::new(CreateContainerResponse { container_id: id }))
    }

    async fn start_container(&self, r: Request<StartContainerRequest>) -> Reply<StartContainerResponse> {
        self.0.start_container(&r.into_inner().container_id).await?;
        Ok(Response::new(StartContainerResponse {}))
    }

    async fn stop_container(&self, r: Request<StopContainerRequest>) -> Reply<StopContainerResponse> {
        let r = r.into_inner();
        self.0.stop_container(&r.container_id, r.timeout).await?;
        Ok(Response::new(StopContainerResponse {}))
    }

    async fn remove_container(&self, r: Request<RemoveContainerRequest>) -> Reply<RemoveContainerResponse> {
        self.0.remove_container(&r.into_inner().container_id).await?;
        Ok(Response::new(RemoveContainerResponse {}))
    }

    async fn list_containers(&self, r: Request<ListContainersRequest>) -> Reply<ListContainersResponse> {
        Ok(Response::new(ListContainersResponse { containers: self.0.list_containers(r.into_inner().filter) }))
    }

    async fn container_status(&self, r: Request<ContainerStatusRequest>) -> Reply<ContainerStatusResponse> {
        let r = r.into_inner();
        let (status, info) = self.0.container_status(&r.container_id, r.verbose)?;
        Ok(Response::new(ContainerStatusResponse { status: Some(status), info }))
    }

    async fn exec_sync(&self, r: Request<ExecSyncRequest>) -> Reply<ExecSyncResponse> {
        let r = r.into_inner();
        Ok(Response::new(self.0.exec_sync(&r.container_id, r.cmd, r.timeout).await?))
    }

    async fn exec(&self, r: Request<ExecRequest>) -> Reply<ExecResponse> {
        Ok(Response::new(ExecResponse { url: self.0.stream_exec(r.into_inner())? }))
    }

    async fn attach(&self, r: Request<AttachRequest>) -> Reply<AttachResponse> {
        Ok(Response::new(AttachResponse { url: self.0.stream_attach(r.into_inner())? }))
    }

    async fn port_forward(&self, r: Request<PortForwardRequest>) -> Reply<PortForwardResponse> {
        Ok(Response::new(PortForwardResponse { url: self.0.stream_port_forward(r.into_inner())? }))
    }

    async fn update_container_resources(
        &self,
        r: Request<UpdateContainerResourcesRequest>,
    ) -> Reply<UpdateContainerResourcesResponse> {
        let r = r.into_inner();
        self.0.update_container_resources(&r.container_id, r.linux).await?;
        Ok(Response::new(UpdateContainerResourcesResponse {}))
    }

    async fn container_stats(&self, r: Request<ContainerStatsRequest>) -> Reply<ContainerStatsResponse> {
        Ok(Response::new(ContainerStatsResponse {
            stats: Some(self.0.container_stats(&r.into_inner().container_id).await?),
        }))
    }

    async fn list_container_stats(&self, r: Request<ListContainerStatsRequest>) -> Reply<ListContainerStatsResponse> {
        Ok(Response::new(ListContainerStatsResponse {
            stats: self.0.list_container_stats(r.into_inner().filter).await,
        }))
    }

    async fn pod_sandbox_stats(&self, r: Request<PodSandboxStatsRequest>) -> Reply<PodSandboxStatsResponse> {
        let stats = self.0.pod_sandbox_stats(&r.into_inner().pod_sandbox_id).await?;
        Ok(Response::new(PodSandboxStatsResponse { stats: Some(stats) }))
    }

    async fn list_pod_sandbox_stats(
        &self,
        r: Request<ListPodSandboxStatsRequest>,
    ) -> Reply<ListPodSandboxStatsResponse> {
        Ok(Response::new(ListPodSandboxStatsResponse {
            stats: self.0.list_pod_sandbox_stats(r.into_inner().filter).await,
        }))
    }

    async fn get_container_events(&self, _r: Request<GetEventsRequest>) -> Reply<crate::events::EventStream> {
        Ok(Response::new(self.0.container_events()))
    }

    async fn reopen_container_log(&self, r: Request<ReopenContainerLogRequest>) -> Reply<ReopenContainerLogResponse> {
        self.0.reopen_container_log(&r.into_inner().container_id).await?;
        Ok(Response::new(ReopenContainerLogResponse {}))
    }
}

#[tonic::async_trait]
impl ImageService for Service {
    async fn list_images(&self, r: Request<ListImagesRequest>) -> Reply<ListImagesResponse> {
        let spec = r.into_inner().filter.and_then(|f| f.image);
        Ok(Response::new(ListImagesResponse { images: self.0.list_images(spec) }))
    }

    async fn image_status(&self, r: Request<ImageStatusRequest>) -> Reply<ImageStatusResponse> {
        let r = r.into_inner();
        let (image, info) = self.0.image_status(r.image, r.verbose)?;
        Ok(Response::new(ImageStatusResponse { image, info }))
    }

    async fn pull_image(&self, r: Request<PullImageRequest>) -> Reply<PullImageResponse> {
        let r = r.into_inner();
        Ok(Response::new(PullImageResponse { image_ref: self.0.pull_image(r.image, r.auth).await? }))
    }

    async fn remove_image(&self, r: Request<RemoveImageRequest>) -> Reply<RemoveImageResponse> {
        self.0.remove_image(r.into_inner().image)?;
        Ok(Response::new(RemoveImageResponse {}))
    }

    async fn image_fs_info(&self, _r: Request<ImageFsInfoRequest>) -> Reply<ImageFsInfoResponse> {
        let fs = self.0.image_fs_info().await?;
        Ok(Response::new(ImageFsInfoResponse { image_filesystems: vec![fs], container_filesystems: Vec::new() }))
    }
}
