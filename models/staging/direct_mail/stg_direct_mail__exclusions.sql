with

source as (

    select * from {{ source('direct_mail', 'exclusions') }}

),

renamed as (

    select
        run_id,
        campaign,
        profile_id,
        reason,
        detail,
        recorded_at

    from source

)

select * from renamed
